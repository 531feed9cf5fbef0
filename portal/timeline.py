"""The property page's picture of the next days: one row per lock, each booking's code as a bar coloured
by its status, today marked. Server-rendered inline SVG, so it needs no JavaScript and no library."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Fill and text colours per code status; the same families as the chips in lockstep.css.
STATUS_COLOURS: dict[str, tuple[str, str]] = {
    "set": ("#127a3e", "#ffffff"),
    "setting": ("#1849a9", "#ffffff"),
    "removing": ("#1849a9", "#ffffff"),
    "unset": ("#98a2b3", "#101828"),
    "removed": ("#d0d5dd", "#344054"),
    "failed": ("#a61b1b", "#ffffff"),
    "booking": ("#c7d7fe", "#101828"),
}

LABEL_WIDTH = 150
DAY_WIDTH = 60
ROW_HEIGHT = 30
HEADER_HEIGHT = 34


@dataclass(frozen=True)
class Bar:
    starts_at: datetime
    ends_at: datetime
    label: str
    status: str  # a CodeStatus value, or "booking" for a stay without codes


@dataclass
class Row:
    label: str
    bars: list[Bar] = field(default_factory=list)


def _lanes(row: Row) -> list[Row]:
    """A row whose bars overlap becomes several rows (first fit, by start), so no bar hides another: two
    stays that overlap (a conflict, or codes of a moved stay still being removed) are both drawn."""
    lanes: list[Row] = []
    for bar in sorted(row.bars, key=lambda b: (b.starts_at, b.ends_at)):
        lane = next((lane for lane in lanes if lane.bars[-1].ends_at <= bar.starts_at), None)
        if lane is None:
            lane = Row(label=row.label if not lanes else f"{row.label} ({len(lanes) + 1})")
            lanes.append(lane)
        lane.bars.append(bar)
    return lanes or [Row(label=row.label)]


def timeline_svg(*, rows: Iterable[Row], now: datetime, tz_name: str, days: int = 14) -> SafeString:
    """Draw `rows` over `days` days from the start of today (in the property's time zone)."""
    rows = [lane for row in rows for lane in _lanes(row)]
    tz = ZoneInfo(tz_name)
    start = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=days)
    width = LABEL_WIDTH + days * DAY_WIDTH
    height = HEADER_HEIGHT + max(len(rows), 1) * ROW_HEIGHT + 18  # room for the "now" label below

    def x(moment: datetime) -> float:
        moment = min(max(moment, start), end)
        return LABEL_WIDTH + (moment - start).total_seconds() / 86400 * DAY_WIDTH

    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="timeline-title" xmlns="http://www.w3.org/2000/svg" font-family="system-ui, sans-serif">',
        f'<title id="timeline-title">Codes over the next {days} days, from {start:%b %-d}</title>',
    ]
    for day in range(days):
        left: float = LABEL_WIDTH + day * DAY_WIDTH  # reused below for the bars' x
        moment = start + timedelta(days=day)
        shade = "#f2f4f7" if moment.weekday() >= 5 else "#ffffff"
        parts.append(
            f'<rect x="{left}" y="{HEADER_HEIGHT}" width="{DAY_WIDTH}" height="{height - HEADER_HEIGHT - 14}" '
            f'fill="{shade}" stroke="#e3e6eb"/>'
            f'<text x="{left + DAY_WIDTH / 2}" y="14" text-anchor="middle" font-size="11" fill="#667085">'
            f"{moment:%a}</text>"
            f'<text x="{left + DAY_WIDTH / 2}" y="28" text-anchor="middle" font-size="12" fill="#344054">'
            f"{moment:%b %-d}</text>"
        )
    for index, row in enumerate(rows):
        top = HEADER_HEIGHT + index * ROW_HEIGHT
        parts.append(
            f'<text x="6" y="{top + ROW_HEIGHT / 2 + 4}" font-size="12" fill="#1d2330">'
            f"{escape(_clip(row.label, 20))}</text>"
        )
        for bar in row.bars:
            if bar.ends_at <= start or bar.starts_at >= end:
                continue
            left, right = x(bar.starts_at), x(bar.ends_at)
            fill, ink = STATUS_COLOURS.get(bar.status, STATUS_COLOURS["unset"])
            title = (
                f"{bar.label}: {bar.status}, {bar.starts_at.astimezone(tz):%b %-d %H:%M} → "
                f"{bar.ends_at.astimezone(tz):%b %-d %H:%M}"
            )
            parts.append(
                f'<g><title>{escape(title)}</title>'
                f'<rect x="{left:.1f}" y="{top + 5}" width="{max(right - left, 2):.1f}" '
                f'height="{ROW_HEIGHT - 10}" rx="4" fill="{fill}"/>'
                f'<text x="{left + 5:.1f}" y="{top + ROW_HEIGHT / 2 + 4}" font-size="11" fill="{ink}">'
                f"{escape(_clip(f'{bar.label} · {bar.status}', int((right - left) / 6.5)))}</text></g>"
            )
    if not rows:
        parts.append(
            f'<text x="{LABEL_WIDTH + 8}" y="{HEADER_HEIGHT + 19}" font-size="12" fill="#667085">No locks.</text>'
        )
    today_x = x(now)
    parts.append(
        f'<line x1="{today_x:.1f}" y1="{HEADER_HEIGHT}" x2="{today_x:.1f}" y2="{height - 14}" '
        f'stroke="#d92d20" stroke-width="2"><title>Now</title></line>'
        f'<text x="{today_x:.1f}" y="{height - 3}" text-anchor="middle" font-size="10" fill="#d92d20">now</text>'
    )
    parts.append("</svg>")
    # Every interpolated text went through escape(); the rest is numbers and constants.
    return mark_safe("".join(parts))  # noqa: S308


def _clip(text: str, limit: int) -> str:
    if limit < 2:
        return ""
    return text if len(text) <= limit else text[: limit - 1] + "…"
