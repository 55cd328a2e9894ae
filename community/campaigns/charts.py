"""Backers over time, as an SVG drawn on the server: no script, no style attribute (the CSP forbids
both), text in `currentColor` so it follows the light or dark page, and every number it shows
also said in words in its <desc> (and in the page's text), as the polls' charts do."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

LINE = "#2f7dd1"  # the polls' bar colour: contrast at least 3.7:1 on both themes
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _x(text: object) -> str:
    s = _NOT_XML.sub("", str(text))
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _day(t: datetime) -> str:
    return f"{t.day} {t:%b %Y}"


def _bucket(span: timedelta) -> timedelta:
    for size in (timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=7)):
        if span / size <= 120:
            return size
    return timedelta(days=30)


def backers_svg(times: list[datetime], *, start: datetime, end: datetime, title: str = "Backers over time") -> str:
    """The running count of backers from `start` (the campaign's publication) to `end` (now, or its
    closing), one step per bucket. Every time must lie within [start, end]."""
    if end <= start:
        end = start + timedelta(hours=1)
    bucket = _bucket(end - start)
    n = max(1, -((start - end) // bucket))
    counts = [0] * n
    for t in times:
        counts[min(max((t - start) // bucket, 0), n - 1)] += 1
    running, total = [], 0
    for c in counts:
        total += c
        running.append(total)
    width, height, left, right, top, bottom = 600, 220, 48, 10, 30, 180
    top_value = max(total, 1)
    plot_w, plot_h = width - left - right, bottom - top
    busiest = max(range(n), key=lambda k: counts[k]) if total else 0
    unit = {timedelta(hours=1): "hour", timedelta(hours=6): "six hours", timedelta(days=1): "day",
            timedelta(days=7): "week"}.get(bucket, "month")
    desc = (f"{total:,} backer{'s' if total != 1 else ''} from {_day(start)} to {_day(end)}, counted per {unit}."
            + (f" The most in one {unit}: {counts[busiest]:,}, from {_day(start + busiest * bucket)}." if total else ""))
    cid = "b" + hashlib.sha256(repr((counts, start, end)).encode()).hexdigest()[:10]
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
         f'aria-labelledby="{cid}-t" aria-describedby="{cid}-d">'),
        f'<title id="{cid}-t">{_x(title)}</title>',
        f'<desc id="{cid}-d">{_x(desc)}</desc>',
        f'<text x="8" y="20" font-size="16" font-weight="700" fill="currentColor">{_x(title)}: {total:,}</text>',
        f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="currentColor" stroke-width="1"/>',
        f'<text x="{left - 4}" y="{top + 5}" font-size="12" text-anchor="end" fill="currentColor">{top_value:,}</text>',
        f'<text x="{left - 4}" y="{bottom}" font-size="12" text-anchor="end" fill="currentColor">0</text>',
        f'<text x="{left}" y="{bottom + 18}" font-size="12" fill="currentColor">{_x(_day(start))}</text>',
        f'<text x="{width - right}" y="{bottom + 18}" font-size="12" text-anchor="end" fill="currentColor">'
        f'{_x(_day(end))}</text>',
    ]
    points = [(left, bottom)]
    for k, value in enumerate(running):
        x0, x1 = left + plot_w * k / n, left + plot_w * (k + 1) / n
        y = bottom - plot_h * value / top_value
        points += [(x0, y), (x1, y)]
    path = " ".join(f"{round(x, 1)},{round(y, 1)}" for x, y in points)
    out.append(f'<polyline points="{path}" fill="none" stroke="{LINE}" stroke-width="2.5"/>')
    out.append("</svg>")
    return "\n".join(out)
