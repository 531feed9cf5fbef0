"""Query-string values the pages and the API share: ids that fit the database's bigint primary keys."""

from __future__ import annotations

import re

MAX_ID = 2**63 - 1  # BigAutoField; a larger number overflows SQLite's driver and PostgreSQL's bigint
_ID = re.compile(r"[0-9]{1,19}")  # ASCII only: str.isdigit() accepts "²", which int() refuses


def parse_id(raw: str | None) -> int | None:
    """The id in ``raw``, or None when it is not one a row could have."""
    if raw is None or not _ID.fullmatch(raw):
        return None
    value = int(raw)
    return value if value <= MAX_ID else None


def clean_search(raw: str | None) -> str:
    """Search text for a page: NUL characters dropped (PostgreSQL refuses them), spaces trimmed."""
    return (raw or "").replace("\x00", "").strip()
