"""The moderators' pages: the dashboard, the submission queue, blog health and posts.

Every page and form here needs a signed-in moderator; anyone else is sent (303) to
``/login?next=<the page>``. The pages are never cached (their routes say so, and
web/app.py never stores a page for a signed-in moderator). Every POST carries the
session's CSRF token (checked by web/app.py) and writes one line to the public
moderation log, with the moderator's e-mail address as the actor and their reason, in
the transaction of the action (community/moderation.py, aggregator/submissions.py).

The blog health chart is SVG made here, inline in the page: no script, no style
attribute (the CSP forbids both); colours are presentation attributes and text is
``currentColor``, so it follows the light or dark page.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import datetime, timedelta, timezone

import bottle
import markupsafe

from aggregator import fetch_history
from aggregator.errors import HustingsError, NotFound
from community import blog_health as health
from community import moderation, outbox, recommendations, signin, submissions
from community.moderation_log import moderation_entries

from .request import Out, Site, Visitor, require_moderator
from .security import same_site_path
from .submit import present

CHART_DAYS = 14


def _first(form: dict, name: str) -> str:
    return (form.get(name) or [""])[0]


def _render(site: "Site", template: str, status: int = 200, **context) -> "Out":
    return Out(site.render(template, **context), status=status)


def _next(form: dict, default: str) -> str:
    return same_site_path(_first(form, "next")) or default


def _act(action, *args, **kwargs) -> None:
    """Run a moderation action; its refusals become 4xx pages that say why."""
    try:
        action(*args, **kwargs)
    except NotFound as exc:
        raise bottle.HTTPError(404, str(exc)) from None
    except submissions.Decided as exc:
        raise bottle.HTTPError(409, str(exc)) from None
    except HustingsError as exc:
        raise bottle.HTTPError(400, str(exc)) from None


# --- pages ------------------------------------------------------------------------------------------


def moderate_dashboard(site: "Site", params: dict) -> "Out":
    mod = require_moderator(site)
    return _render(site, "moderate.html", title="Moderation", moderator=mod,
                   counts=health.counts(site.engine), recent=moderation_entries(site.engine, limit=10),
                   messages=outbox.messages(site.engine, limit=10),
                   failures=signin.recent_failures(site.engine, site.settings, mod.email),
                   bursts=recommendations.bursts(site.engine, since=datetime.now(timezone.utc) - timedelta(days=1)),
                   burst_at_least=recommendations.BURST)


def moderate_queue(site: "Site", params: dict) -> "Out":
    require_moderator(site)

    pending = [dict(sub, check=present(sub["check"])) for sub in submissions.listing(site.engine, "pending")]
    decided = submissions.listing(site.engine, None, limit=20)
    decided = [s for s in decided if s["status"] != "pending"]
    return _render(site, "moderate_queue.html", title="Submissions waiting", pending=pending, decided=decided)


def moderate_blogs(site: "Site", params: dict) -> "Out":
    require_moderator(site)
    return _render(site, "moderate_blogs.html", title="Blogs: health", blogs=health.blogs(site.engine))


def blog_health(site: "Site", params: dict, blog_id: int) -> "Out":
    require_moderator(site)
    try:
        blog = health.blog(site.engine, blog_id)
    except NotFound as exc:
        raise bottle.HTTPError(404, str(exc)) from None
    now = datetime.now(timezone.utc)
    since = now - timedelta(days=CHART_DAYS)
    rows = health.history(site.engine, blog_id, since)
    return _render(site, "moderate_blog.html", title=f"Health: {blog['title'] or blog['url']}", blog=blog,
                   chart=markupsafe.Markup(health_chart_svg(rows, start=since, end=now)),
                   ok=sum(1 for r in rows if health.fetch_ok(r)),
                   failed=sum(1 for r in rows if not health.fetch_ok(r)),
                   history=fetch_history.fetch_history(site.engine, blog_id, limit=50), fetch_ok=health.fetch_ok,
                   submission=submissions.for_feed(site.engine, blog_id), days=CHART_DAYS)


def moderate_posts(site: "Site", params: dict) -> "Out":
    require_moderator(site)
    return _render(site, "moderate_posts.html", title="Posts: picks and hidden",
                   lists=health.posts_for_moderators(site.engine))


# --- forms --------------------------------------------------------------------------------------------


def _who(v: "Visitor") -> str | None:
    return v.moderator.email if v.moderator else None


def approve(site: "Site", v: "Visitor", form: dict, submission_id: int) -> str:
    actor = _who(v)
    if actor is None:
        return "/login?next=/moderate/queue"
    _act(moderation.approve_submission, site.engine, submission_id, actor=actor,
         reason=_first(form, "reason"), name=_first(form, "name"), category=_first(form, "category"),
         site_name=site.settings.site_name, site_url=site.settings.site_url)
    return _next(form, "/moderate/queue")


def reject(site: "Site", v: "Visitor", form: dict, submission_id: int) -> str:

    actor = _who(v)
    if actor is None:
        return "/login?next=/moderate/queue"
    sub = submissions.get(site.engine, submission_id)
    status_url = site.settings.site_url.rstrip("/") + submissions.status_path(site.settings, sub) if sub else ""
    _act(moderation.reject_submission, site.engine, submission_id, actor=actor,
         reason=_first(form, "reason"), site_name=site.settings.site_name, status_url=status_url)
    return _next(form, "/moderate/queue")


def _blog_action(action):
    def handler(site: "Site", v: "Visitor", form: dict, blog_id: int) -> str:
        actor = _who(v)
        if actor is None:
            return f"/login?next=/moderate/blogs/{blog_id}"
        extra = {"site_name": site.settings.site_name} if action is moderation.remove_blog else {}
        _act(action, site.engine, blog_id, actor=actor, reason=_first(form, "reason"), **extra)
        return _next(form, f"/moderate/blogs/{blog_id}")

    handler.__name__ = action.__name__
    return handler


pause_blog = _blog_action(moderation.pause_blog)
resume_blog = _blog_action(moderation.resume_blog)
remove_blog = _blog_action(moderation.remove_blog)


def _post_action(action, after: str | None = None):
    def handler(site: "Site", v: "Visitor", form: dict, post_id: int) -> str:
        actor = _who(v)
        if actor is None:
            return f"/login?next=/posts/{post_id}"
        _act(action, site.engine, post_id, actor=actor, reason=_first(form, "reason"))
        # A hidden post's page answers 410: back to the list, where it can be unhidden.
        return after or _next(form, f"/posts/{post_id}")

    handler.__name__ = action.__name__
    return handler


feature_post = _post_action(moderation.feature_post)
unfeature_post = _post_action(moderation.unfeature_post)
hide_post = _post_action(moderation.hide_post, after="/moderate/posts#hidden")
unhide_post = _post_action(moderation.unhide_post)


# --- the health chart ------------------------------------------------------------------------------

OK_FILL = "#2f7dd1"  # as the poll charts (web/polls.py): ≥ 3.7:1 on light and dark backgrounds
FAIL_FILL = "#d9480f"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _x(text: object) -> str:
    s = _NOT_XML.sub("", str(text))
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def _bucket_for(span: timedelta) -> timedelta:
    for bucket in (timedelta(hours=1), timedelta(hours=3), timedelta(hours=6), timedelta(hours=12)):
        if span / bucket <= 60:
            return bucket
    return timedelta(days=1)


def health_chart_svg(rows: list[dict], *, start: datetime, end: datetime) -> str:
    """Successes and failures per time bucket as stacked columns (failures on top), with the
    numbers repeated in <desc> and the legend in text, so colour is never the only cue."""
    first = min((r["started_at"] for r in rows), default=end)
    start = max(start, first - timedelta(hours=1))
    bucket = _bucket_for(end - start)
    n = max(1, math.ceil((end - start) / bucket))
    ok, bad = [0] * n, [0] * n
    for r in rows:
        k = min(max(int((r["started_at"] - start) / bucket), 0), n - 1)
        (ok if health.fetch_ok(r) else bad)[k] += 1
    total_ok, total_bad = sum(ok), sum(bad)
    width, height, left, right, top, bottom = 600, 220, 40, 8, 40, 180
    plot_w, plot_h = width - left - right, bottom - top
    scale = max(1, max(o + b for o, b in zip(ok, bad)))
    col_w = plot_w / n
    hours = int(bucket.total_seconds() // 3600)
    per = f"{hours} hours" if hours > 1 else "hour" if hours == 1 else "day"
    fmt = "%d %b %H:%M"
    desc = (f"Fetches from {start:{fmt}} to {end:{fmt}} UTC, one column per {per}: {total_ok} succeeded and "
            f"{total_bad} failed.")
    worst = sorted(((b, k) for k, b in enumerate(bad) if b), reverse=True)[:3]
    if worst:
        desc += " Most failures: " + "; ".join(f"{(start + k * bucket):{fmt}}: {b}" for b, k in worst) + "."
    cid = "h" + hashlib.sha256(repr((ok, bad, start, end)).encode()).hexdigest()[:10]
    out = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
         f'aria-labelledby="{cid}-t" aria-describedby="{cid}-d" font-family="system-ui, sans-serif">'),
        f'<title id="{cid}-t">Fetch history: successes and failures</title>',
        f'<desc id="{cid}-d">{_x(desc)}</desc>',
        f'<text x="8" y="20" font-size="15" font-weight="700" fill="currentColor">{total_ok} succeeded, '
        f'{total_bad} failed</text>',
        f'<rect x="{width - 230}" y="9" width="12" height="12" fill="{OK_FILL}"/>',
        f'<text x="{width - 213}" y="20" font-size="13" fill="currentColor">succeeded</text>',
        f'<rect x="{width - 120}" y="9" width="12" height="12" fill="{FAIL_FILL}"/>',
        f'<text x="{width - 103}" y="20" font-size="13" fill="currentColor">failed (top)</text>',
        f'<line x1="{left}" y1="{bottom}" x2="{width - right}" y2="{bottom}" stroke="currentColor" stroke-width="1"/>',
        f'<text x="{left - 4}" y="{top + 5}" font-size="12" text-anchor="end" fill="currentColor">{scale}</text>',
        f'<text x="{left - 4}" y="{bottom}" font-size="12" text-anchor="end" fill="currentColor">0</text>',
        f'<text x="{left}" y="{bottom + 18}" font-size="12" fill="currentColor">{_x(f"{start:{fmt}}")}</text>',
        (f'<text x="{width - right}" y="{bottom + 18}" font-size="12" text-anchor="end" fill="currentColor">'
         f'{_x(f"{end:{fmt}}")} UTC</text>'),
    ]
    w = round(max(col_w - (1 if col_w > 3 else 0), 0.5), 2)
    for k in range(n):
        x = round(left + k * col_w, 2)
        h_ok = round(plot_h * ok[k] / scale, 2)
        h_bad = round(plot_h * bad[k] / scale, 2)
        if ok[k]:
            out.append(f'<rect x="{x}" y="{round(bottom - h_ok, 2)}" width="{w}" height="{h_ok}" fill="{OK_FILL}">'
                       f'<title>{_x(f"{(start + k * bucket):{fmt}}")}: {ok[k]} succeeded</title></rect>')
        if bad[k]:
            out.append(f'<rect x="{x}" y="{round(bottom - h_ok - h_bad, 2)}" width="{w}" height="{h_bad}" '
                       f'fill="{FAIL_FILL}"><title>{_x(f"{(start + k * bucket):{fmt}}")}: {bad[k]} failed</title></rect>')
    if not rows:
        out.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h / 2}" font-size="14" text-anchor="middle" '
                   f'fill="currentColor">No fetches in these {CHART_DAYS} days</text>')
    out.append("</svg>")
    return "\n".join(out)

