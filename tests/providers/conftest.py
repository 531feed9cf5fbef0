from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def vendors_on_loopback(settings):
    """Test vendors answer (through `responses`, or the fake Seam server) on 127.0.0.1, which production
    refuses; a test about that refusal turns it off again."""
    settings.EGRESS_ALLOW_PRIVATE_ADDRESSES = True
