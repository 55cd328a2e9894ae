"""Server-rendered SVG charts (no scripts, no inline styles) with every number also in text.

Part of the reader polls package: see community/polls/model.py for the rules every
part keeps (no database, no clock, no request; integer arithmetic; every decision in words).
"""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Iterable
from datetime import datetime, timedelta

from .counting import _n, percent_text
from .method import _when
from .model import _NOT_XML, _aware_utc

BAR_FILL = "#2f7dd1"  # contrast ≥ 3.7:1 on the site's light and dark backgrounds and panels
BURST_FILL = "#d9480f"  # likewise (≥ 3.7:1); bursts are also marked in text, not by colour only
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _x(text: object) -> str:
    """Text made safe for SVG element content and attribute values: characters XML
    cannot carry removed, then & < > " ' escaped, and = too, so that even a label
    reading `style="..."` or `href=...` never puts those strings in the markup for a
    scanner (or a careless later edit) to trip over."""
    s = _NOT_XML.sub("", str(text))
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;").replace("=", "&#61;"))


def _clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())  # a label's newlines would not show in SVG anyway
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!", ":")) else text + "."


def _chart_id(*parts: object) -> str:
    # Unique enough per page (two charts of different data never share it) and stable,
    # so the SVG is cacheable and tests can compare output.
    return "c" + hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _svg_open(width: int, height: int, cid: str, title: str, desc: str) -> list[str]:
    # role="img" and a <title>/<desc> pair make one image with a name and a full text
    # description; no width/height, so the viewBox scales it to its container.
    return [
        (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
         f'aria-labelledby="{cid}-t" aria-describedby="{cid}-d" font-family="{_x(FONT)}">'),
        f'<title id="{cid}-t">{_x(title)}</title>',
        f'<desc id="{cid}-d">{_x(desc)}</desc>',
    ]


def bar_chart_svg(rows: list[tuple[str, int]], *, total: int, title: str) -> str:
    """A horizontal bar chart of counts, each bar's length its share of `total`
    (ballots), so a full-width bar means every ballot. Each row shows its label above
    the bar and "count (percent%)" beside it; <desc> repeats every number in text.
    Text is `currentColor`, so the chart must be inlined in the page (not an <img>)
    to follow the page's light or dark colour."""
    if total < 0 or any(count < 0 for _, count in rows):
        raise ValueError("counts cannot be negative")
    if any(count > total for _, count in rows):
        raise ValueError("a row's count is more than the total")
    # An image needs a name: a title that is empty once unusable characters go gets one.
    title = " ".join(_NOT_XML.sub("", str(title)).split()) or "Poll results"
    width, pad, label_h, bar_h, gap, title_h = 600, 8, 20, 24, 14, 34
    number_w = 130  # room right of the bars for "12,345 (100.0%)"
    track_w = width - 2 * pad - number_w
    height = title_h + len(rows) * (label_h + bar_h + gap) + pad
    desc = f"{_sentence(_clip(title, 500))} {_n(total, 'ballot')} in all." + "".join(
        f" {_clip(label, 500)}: {count:,} ({percent_text(count, total)}%)." for label, count in rows)
    cid = _chart_id("bar", title, rows, total)
    out = _svg_open(width, height, cid, title, desc)
    out.append(f'<text x="{pad}" y="22" font-size="17" font-weight="700" fill="currentColor">'
               f'{_x(_clip(title, 64))}</text>')
    y = title_h
    for label, count in rows:
        bar_w = round(track_w * count / total, 2) if total else 0
        out.append(f'<text x="{pad}" y="{y + 15}" font-size="15" fill="currentColor">{_x(_clip(label, 70))}</text>')
        out.append(f'<rect x="{pad}" y="{y + label_h}" width="{track_w}" height="{bar_h}" rx="3" '
                   'fill="currentColor" fill-opacity="0.08"/>')
        if bar_w:
            out.append(f'<rect x="{pad}" y="{y + label_h}" width="{bar_w}" height="{bar_h}" rx="3" '
                       f'fill="{BAR_FILL}"/>')
        out.append(f'<text x="{width - pad}" y="{y + label_h + 17}" font-size="15" text-anchor="end" '
                   f'fill="currentColor">{count:,} ({percent_text(count, total)}%)</text>')
        y += label_h + bar_h + gap
    out.append("</svg>")
    return "\n".join(out)


def burst_threshold(counts: Iterable[int]) -> float:
    """A bucket is a burst when its count is more than this: max(10, 5 × the median of
    the non-empty buckets). The median, not the mean, so the burst itself does not
    raise the bar; the floor of 10 keeps a quiet poll's 1 → 6 from looking like an
    attack. Known blind spot: if nearly all ballots arrive in one bucket, that bucket
    is the median and is never flagged; the chart still shows it."""
    busy = [c for c in counts if c > 0]
    return max(10.0, statistics.median(busy) * 5) if busy else 10.0


def _num(x: float) -> str:
    """12 -> "12", 12.5 -> "12.5", 1500000 -> "1,500,000" (never "1.5e+06")."""
    return f"{int(x):,}" if x == int(x) else f"{x:,.1f}"


def _duration(d: timedelta) -> str:
    """A bucket length in words: "hour", "15 minutes", "day", "90 seconds"."""
    seconds = int(d.total_seconds())
    if seconds != d.total_seconds() or seconds <= 0:
        return str(d)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds % size == 0:
            k = seconds // size
            return unit if k == 1 else f"{k:,} {unit}s"
    return str(d)  # pragma: no cover


MAX_BUCKETS = 2000  # a chart wider than this is unreadable, and unbounded work


def votes_over_time_svg(times: list[datetime], *, bucket: timedelta, start: datetime,
                        end: datetime) -> tuple[str, list[tuple[datetime, int]]]:
    """Ballots per time bucket from `start`, as a column chart for moderators, and the
    bursts (bucket start, count) by `burst_threshold`'s rule, to list in text too.

    Buckets are [start + k·bucket, start + (k+1)·bucket); the last may be shorter and
    also takes a ballot at exactly `end`. Every time must lie within [start, end]:
    pass end = the later of the closing time (or now) and the last ballot, so none
    is ever dropped from the picture without a word.
    """
    start = _aware_utc(start, "start")
    end = _aware_utc(end, "end")
    if bucket <= timedelta(0):
        raise ValueError("bucket must be positive")
    if end <= start:
        raise ValueError("end must be after start")
    n = -((start - end) // bucket)  # ceil((end - start) / bucket)
    if n > MAX_BUCKETS:
        raise ValueError(f"{n} buckets is too many (at most {MAX_BUCKETS}): use a longer bucket")
    counts = [0] * n
    for t in times:
        t = _aware_utc(t, "a ballot time")
        if not start <= t <= end:
            raise ValueError(f"a ballot time {t.isoformat()} is outside {start.isoformat()} – {end.isoformat()}")
        counts[min((t - start) // bucket, n - 1)] += 1
    threshold = burst_threshold(counts)
    bursts = [(start + k * bucket, c) for k, c in enumerate(counts) if c > threshold]
    threshold_text = _num(threshold)

    width, height, left, right, top, bottom = 600, 240, 44, 8, 34, 196
    plot_w, plot_h = width - left - right, bottom - top
    scale_max = max(max(counts), threshold)
    col_w = plot_w / n
    desc = (f"Ballots received per {_duration(bucket)} from {_when(start)} to {_when(end)}: {len(times):,} in all, "
            f"in {n} buckets. A bucket is a burst when it has more than {threshold_text} ballots "
            "(the larger of 10 and five times the median of the non-empty buckets). ")
    desc += ("Bursts: " + "; ".join(f"{_when(s)}: {c:,}" for s, c in bursts) + ".") if bursts else "No bursts."
    cid = _chart_id("time", tuple(counts), bucket, start, end)
    out = _svg_open(width, height, cid, "Ballots over time", desc)
    out.append('<text x="8" y="22" font-size="17" font-weight="700" fill="currentColor">Ballots over time'
               f'{" — " + _n(len(bursts), "burst") + " flagged" if bursts else ""}</text>')
    # Axes and their numbers.
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="currentColor" '
               'stroke-width="1"/>')
    out.append(f'<text x="{left - 4}" y="{top + 5}" font-size="12" text-anchor="end" fill="currentColor">'
               f'{_num(scale_max)}</text>')
    out.append(f'<text x="{left - 4}" y="{bottom}" font-size="12" text-anchor="end" fill="currentColor">0</text>')
    out.append(f'<text x="{left}" y="{bottom + 18}" font-size="12" fill="currentColor">{_x(_when(start))}</text>')
    out.append(f'<text x="{width - right}" y="{bottom + 18}" font-size="12" text-anchor="end" '
               f'fill="currentColor">{_x(_when(end))}</text>')
    for k, c in enumerate(counts):
        if not c:
            continue
        h = round(plot_h * c / scale_max, 2)
        x = round(left + k * col_w, 2)
        w = round(max(col_w - (1 if col_w > 3 else 0), 0.5), 2)
        burst = c > threshold
        out.append(f'<rect x="{x}" y="{round(bottom - h, 2)}" width="{w}" height="{h}" '
                   f'fill="{BURST_FILL if burst else BAR_FILL}"/>')
        if burst:  # marked in text as well as colour
            out.append(f'<text x="{round(x + w / 2, 2)}" y="{round(bottom - h - 3, 2)}" font-size="12" '
                       f'text-anchor="middle" fill="currentColor">!</text>')
    # The burst threshold as a dashed line, labelled.
    ty = round(bottom - plot_h * threshold / scale_max, 2)
    out.append(f'<line x1="{left}" y1="{ty}" x2="{width - right}" y2="{ty}" stroke="currentColor" '
               'stroke-width="1" stroke-dasharray="4 3" stroke-opacity="0.7"/>')
    out.append(f'<text x="{width - right}" y="{round(ty - 4, 2)}" font-size="12" text-anchor="end" '
               f'fill="currentColor">burst above {threshold_text}</text>')
    out.append(f'<text x="{left}" y="{bottom + 36}" font-size="12" fill="currentColor">'
               f'{_x(_n(len(times), "ballot"))}, one column per {_x(_duration(bucket))}</text>')
    out.append("</svg>")
    return "\n".join(out), bursts


