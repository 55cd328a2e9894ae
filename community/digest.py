"""The digest: issues built from the site's own ranking, queued once per subscriber, archived.

* **Issues and their dates.** A daily issue is named for the day it is published (like a
  morning paper: the issue of 2026-12-05 goes out at `digest_send_time` that day); a weekly
  one for the ISO week it is published in (on the Monday). An issue covers the time since
  the previous issue of its kind was built (or, with none in the last period, one period
  back from its send time) up to the moment it is built, so issues chain without gaps or
  repeats even when one is sent early or late by hand.
* **What is in it.** The period's posts in the front page's order (aggregator/ranking.py:
  the same score and the same per-blog caps), editor's picks made in the period, open polls,
  blogs approved in the period, campaigns gathering backers (open ones backed in the period, in
  the directory's rising order), and the editor's note written at /moderate/digest. It is
  fixed when built (`digest_issues.content`), so the archive and every copy agree; a
  subscriber who follows categories gets the posts of those categories from it.
* **Exactly once.** Queuing writes one outbox row per (issue, confirmed subscriber of that
  frequency) under a unique constraint, with INSERT ... ON CONFLICT DO NOTHING: running
  `digest send` again adds only subscribers confirmed since. The worker's job builds and
  queues each issue once, at its send time, on the elected leader only.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from aggregator import listings, ranking
from aggregator.db import (
    digest_issues,
    digest_notes,
    feeds,
    insert_for,
    outbox,
    posts,
    reading,
    submissions,
    subscribers,
    utcnow,
    writing,
)
from aggregator.errors import HustingsError, NotFound
from aggregator.models import PUBLIC_STATUSES
from aggregator.settings import Settings

from .campaigns import store as campaign_store
from .campaigns.text import to_text
from .polls import store as poll_store

PERIODS = ("daily", "weekly")
LENGTH = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}
SHOWN = {"daily": 10, "weekly": 15}  # posts in one reader's copy
STORED = 40  # posts kept in the issue, so readers who follow categories still get a full copy
PICKS = 5
CAMPAIGNS = 3  # rising campaigns in an issue: a nudge to back one, not a second directory
SUMMARY = 280  # characters of each post's summary


@dataclass(frozen=True)
class Issue:
    id: int | None  # None: a preview, not stored
    period: str
    key: str
    starts_at: datetime
    ends_at: datetime
    subject: str
    content: dict
    created_at: datetime
    queued_at: datetime | None = None

    @property
    def published(self) -> date:
        return publication_day(self.period, self.key)

    @property
    def path(self) -> str:
        return f"/digest/{self.key}" if self.period == "daily" else f"/digest/week/{self.key}"

    @classmethod
    def of(cls, row) -> "Issue":
        m = row._mapping
        return cls(m["id"], m["period"], m["key"], m["starts_at"], m["ends_at"], m["subject"],
                   json.loads(m["content"]), m["created_at"], m["queued_at"])


# --- dates --------------------------------------------------------------------------------------------


def _zone(settings: Settings) -> ZoneInfo:
    return ZoneInfo(settings.digest_timezone)


def send_moment(settings: Settings, day: date) -> datetime:
    """When an issue published on `day` goes out, in UTC."""
    hh, mm = (int(x) for x in settings.digest_send_time.split(":"))
    return datetime.combine(day, time(hh, mm), tzinfo=_zone(settings)).astimezone(timezone.utc)


def key_for(period: str, day: date) -> str:
    if period == "daily":
        return day.isoformat()
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def publication_day(period: str, key: str) -> date:
    """The day an issue is published (a weekly one: its Monday). Raises HustingsError for a bad key."""
    try:
        if period == "daily":
            if len(key) != 10:
                raise ValueError(key)
            return date.fromisoformat(key)
        year, week = key.split("-W")
        if len(year) != 4 or len(week) != 2:
            raise ValueError(key)
        return date.fromisocalendar(int(year), int(week), 1)
    except ValueError:
        example = "2026-12-05" if period == "daily" else "2026-W49"
        raise HustingsError(f"{key[:20]!r} is not a {period} issue (like {example})") from None


def local_today(settings: Settings, now: datetime) -> date:
    return now.astimezone(_zone(settings)).date()


def current_key(settings: Settings, period: str, now: datetime, day: date | None = None) -> str:
    """The issue `digest send` and `preview` mean without --date: today's (this week's)."""
    return key_for(period, day or local_today(settings, now))


def due_key(settings: Settings, period: str, now: datetime) -> str | None:
    """The issue the worker should have sent by now, or None (a weekly issue outside Mondays)."""
    today = local_today(settings, now)
    if period == "weekly" and today.isoweekday() != 1:
        return None
    if now < send_moment(settings, today):
        return None
    return key_for(period, today)


def next_key(settings: Settings, period: str, now: datetime) -> str:
    """The next issue that is not built yet at its send time: the one an editor's note is for."""
    day = local_today(settings, now)
    if period == "weekly":
        day -= timedelta(days=day.isoweekday() - 1)  # this week's Monday
    if now >= send_moment(settings, day):
        day += LENGTH[period]
    return key_for(period, day)


def _check_period(period: str) -> None:
    if period not in PERIODS:
        raise HustingsError(f"choose the period: {' or '.join(PERIODS)}")


# --- building an issue ------------------------------------------------------------------------------------


def window(engine: Engine, settings: Settings, period: str, key: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the posts an issue takes, were it built `now`."""
    sent = send_moment(settings, publication_day(period, key))
    nominal = sent - LENGTH[period]
    end = now if now >= nominal else sent
    with reading(engine) as conn:
        previous = conn.execute(sa.select(sa.func.max(digest_issues.c.ends_at)).where(
            digest_issues.c.period == period, digest_issues.c.key < key)).scalar()
    start = nominal
    if previous is not None and nominal - LENGTH[period] <= previous < end:
        start = previous
    return start, max(end, start)


def _candidates(engine: Engine, start: datetime, end: datetime) -> list[ranking.Candidate]:
    visible = sa.and_(posts.c.deleted == sa.false(), posts.c.hidden == sa.false(), posts.c.duplicate_of.is_(None),
                      feeds.c.status.in_(PUBLIC_STATUSES))
    query = (sa.select(posts.c.id, posts.c.feed_id, posts.c.first_seen, posts.c.published, posts.c.recommendations)
             .join(feeds, feeds.c.id == posts.c.feed_id)
             .where(visible, posts.c.first_seen >= start, posts.c.first_seen < end))
    names = {f.name for f in dataclasses.fields(ranking.Candidate)}
    with reading(engine) as conn:
        rows = conn.execute(query).all()
    out = []
    for r in rows:
        values = {"id": r.id, "blog_id": r.feed_id, "first_seen": r.first_seen, "recommendations": r.recommendations,
                  "published": r.published}
        out.append(ranking.Candidate(**{k: v for k, v in values.items() if k in names}))
    return out


def _post(settings: Settings, row: dict, category: str) -> dict:
    summary = " ".join((row.get("summary") or "").split())
    if len(summary) > SUMMARY:
        summary = summary[:SUMMARY].rsplit(" ", 1)[0] + "…"
    return {"id": row["id"], "title": row["title"] or "(untitled)", "url": row["url"], "blog": row["blog"] or "",
            "blog_url": row.get("blog_url") or "", "author": row.get("author") or "", "summary": summary,
            "category": category, "recommendations": row.get("recommendations") or 0,
            "link": f"{settings.site_url.rstrip('/')}/posts/{row['id']}"}


def _categories(engine: Engine, feed_ids: set[int]) -> dict[int, str]:
    if not feed_ids:
        return {}
    with reading(engine) as conn:
        return dict(conn.execute(sa.select(feeds.c.id, feeds.c.category).where(feeds.c.id.in_(feed_ids))).all())


def gather(engine: Engine, settings: Settings, period: str, start: datetime, end: datetime, note: str = "") -> dict:
    """What an issue covering [start, end) holds."""
    placed = ranking.rank(_candidates(engine, start, end), now=end, window_h=settings.rank_window_h)
    picked = [p for p in listings.editors_picks(engine, limit=50)
              if p.get("featured_at") is not None and start <= p["featured_at"] < end][:PICKS]
    picked_ids = {p["id"] for p in picked}
    ids = [p.id for p in placed if p.id not in picked_ids][:STORED]
    rows = listings.posts_by_id(engine, ids)
    cats = _categories(engine, {r["feed_id"] for r in rows.values()} | {p["feed_id"] for p in picked})
    top = [_post(settings, rows[i], cats.get(rows[i]["feed_id"], "")) for i in ids if i in rows]
    base = settings.site_url.rstrip("/")
    polls = [{"id": r.id, "question": r.poll.question, "closes_at": r.poll.closes_at.isoformat() if r.poll.closes_at
              else None, "link": f"{base}/polls/{r.id}"} for r in poll_store.open_polls(engine, end, limit=5)]
    return {"posts": top, "picks": [_post(settings, p, cats.get(p["feed_id"], "")) for p in picked], "polls": polls,
            "blogs": _new_blogs(engine, settings, start, end), "campaigns": _campaigns(engine, settings, start, end),
            "note": note.strip()}


def _campaigns(engine: Engine, settings: Settings, start: datetime, end: datetime) -> list[dict]:
    """Open campaigns that gained backers in the issue's window, rising first (the directory's order)."""
    base = settings.site_url.rstrip("/")
    return [{"id": c.id, "title": c.title, "ask": to_text(settings, c.ask, SUMMARY // 2), "ask_of": c.ask_of,
             "backers": c.backers, "recent": recent, "link": f"{base}/campaigns/{c.slug}"}
            for c, recent in campaign_store.gathering(engine, since=start, until=end, limit=CAMPAIGNS)]


def _new_blogs(engine: Engine, settings: Settings, start: datetime, end: datetime) -> list[dict]:
    query = (sa.select(feeds.c.id, feeds.c.title, feeds.c.site_url, feeds.c.category)
             .join(submissions, submissions.c.feed_id == feeds.c.id)
             .where(submissions.c.status == "approved", submissions.c.decided_at >= start,
                    submissions.c.decided_at < end, feeds.c.status.in_(PUBLIC_STATUSES))
             .order_by(submissions.c.decided_at, feeds.c.id))
    with reading(engine) as conn:
        rows = {r.id: r for r in reversed(conn.execute(query).all())}  # one line per blog: its first approval
    return [{"id": r.id, "title": r.title or r.site_url, "site_url": r.site_url, "category": r.category,
             "link": f"{settings.site_url.rstrip('/')}/blogs/{r.id}"} for r in reversed(rows.values())]


def subject_for(settings: Settings, period: str, key: str, lead: str) -> str:
    day = publication_day(period, key)
    when = (f"{day:%A} {day.day} {day:%B %Y}" if period == "daily"
            else f"week {day.isocalendar()[1]} of {day.isocalendar()[0]}")
    subject = f"{settings.site_name} {period}, {when}"
    if lead:
        subject += f": {' '.join(lead.split())}"
    return subject[:250]


def preview(engine: Engine, settings: Settings, period: str, key: str | None = None, now: datetime | None = None) -> Issue:
    """The issue as it stands (the stored one once built; else what it would hold if built now)."""
    _check_period(period)
    now = now or utcnow()
    key = key or current_key(settings, period, now)
    stored = get(engine, period, key)
    if stored is not None:
        return stored
    start, end = window(engine, settings, period, key, now)
    content = gather(engine, settings, period, start, end, note_for(engine, period, key))
    lead = content["posts"][0]["title"] if content["posts"] else ""
    return Issue(None, period, key, start, end, subject_for(settings, period, key, lead), content, now)


def build(engine: Engine, settings: Settings, period: str, key: str | None = None, now: datetime | None = None) -> Issue:
    """The stored issue, built now when it is not yet (once: the unique (period, key) decides a race)."""
    issue = preview(engine, settings, period, key, now)
    if issue.id is not None:
        return issue
    with writing(engine) as conn:
        stmt = insert_for(conn)(digest_issues).values(
            period=period, key=issue.key, starts_at=issue.starts_at, ends_at=issue.ends_at, subject=issue.subject,
            content=json.dumps(issue.content, ensure_ascii=False), created_at=issue.created_at)
        conn.execute(stmt.on_conflict_do_nothing(index_elements=["period", "key"]))
    return get(engine, period, issue.key)


def queue(engine: Engine, issue: Issue, now: datetime | None = None) -> int:
    """One outbox row per confirmed subscriber of the issue's frequency who has none; returns how many."""
    now = now or utcnow()
    chosen = sa.select(
        subscribers.c.email, sa.literal(issue.subject[:300]), sa.literal(""), sa.literal("digest"),
        sa.literal(now, type_=outbox.c.created_at.type), sa.literal("queued"), subscribers.c.id,
        sa.literal(issue.id),
    ).where(subscribers.c.status == "confirmed", subscribers.c.frequency == issue.period)
    columns = ["to_address", "subject", "body", "kind", "created_at", "status", "subscriber_id", "issue_id"]
    with writing(engine) as conn:
        stmt = insert_for(conn)(outbox).from_select(columns, chosen)
        stmt = stmt.on_conflict_do_nothing(index_elements=["issue_id", "subscriber_id"]).returning(outbox.c.id)
        added = len(conn.execute(stmt).all())
        conn.execute(sa.update(digest_issues).where(digest_issues.c.id == issue.id, digest_issues.c.queued_at.is_(None))
                     .values(queued_at=now))
    return added


def send_due(engine: Engine, settings: Settings, now: datetime | None = None) -> list[tuple[Issue, int]]:
    """The worker's job: build and queue each period's issue once its send time has come."""
    now = now or utcnow()
    done = []
    for period in PERIODS:
        key = due_key(settings, period, now)
        if key is None:
            continue
        issue = get(engine, period, key)
        if issue is not None and issue.queued_at is not None:
            continue
        if issue is None:
            draft = preview(engine, settings, period, key, now)
            c = draft.content
            if not (c["posts"] or c["picks"] or c["polls"] or c["blogs"] or c.get("campaigns") or c["note"]):
                continue  # nothing happened: no issue (the archive stays free of empty ones)
            issue = build(engine, settings, period, key, now)
        done.append((issue, queue(engine, issue, now)))
    return done


# --- the archive and the editor's note ---------------------------------------------------------------------


def get(engine: Engine, period: str, key: str) -> Issue | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(digest_issues).where(digest_issues.c.period == period,
                                                          digest_issues.c.key == key)).first()
    return Issue.of(row) if row is not None else None


def get_or_404(engine: Engine, period: str, key: str) -> Issue:
    """Raises NotFound (the archive's pages answer 404)."""
    publication_day(period, key)
    issue = get(engine, period, key)
    if issue is None:
        raise NotFound(f"there is no {period} issue {key}")
    return issue


def by_id(engine: Engine, issue_id: int) -> Issue | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(digest_issues).where(digest_issues.c.id == issue_id)).first()
    return Issue.of(row) if row is not None else None


def archive(engine: Engine, *, period: str | None = None, limit: int = 60) -> list[Issue]:
    query = sa.select(digest_issues).order_by(digest_issues.c.created_at.desc(), digest_issues.c.id.desc()).limit(limit)
    if period:
        query = query.where(digest_issues.c.period == period)
    with reading(engine) as conn:
        return [Issue.of(r) for r in conn.execute(query)]


def note_for(engine: Engine, period: str, key: str) -> str:
    with reading(engine) as conn:
        return conn.execute(sa.select(digest_notes.c.body).where(digest_notes.c.period == period,
                                                                 digest_notes.c.key == key)).scalar() or ""


def save_note(engine: Engine, period: str, key: str, body: str, by: str, now: datetime | None = None) -> None:
    """The editor's note for an issue not yet built. Raises HustingsError once it is."""
    _check_period(period)
    publication_day(period, key)
    body = body.replace("\r\n", "\n").strip()
    if len(body) > 4000:
        raise HustingsError("the editor's note is longer than 4,000 characters")
    if get(engine, period, key) is not None:
        raise HustingsError(f"the {period} issue {key} is already built; its note can no longer change")
    now = now or utcnow()
    with writing(engine) as conn:
        stmt = insert_for(conn)(digest_notes).values(period=period, key=key, body=body, updated_by=by, updated_at=now)
        conn.execute(stmt.on_conflict_do_update(index_elements=["period", "key"],
                                                set_={"body": body, "updated_by": by, "updated_at": now}))
