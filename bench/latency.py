from __future__ import annotations

from collections.abc import Callable

Report = Callable[[str, str, bool], None]


def run(report: Report, quick: bool) -> None:
    pass
