from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def feeds_on_loopback(settings):
    """Test feeds are served (through `responses`) from 127.0.0.1, which production refuses."""
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = True
