"""Campaigns in the database: proposing one, the organiser's links, reading them back, the directory.

* **Proposing** writes a ``pending`` campaign, its line in the public log (by number only: the
  words are unmoderated until a moderator reads them) and the organiser's confirmation mail,
  in one transaction. Nothing is shown to readers until a moderator approves it
  (community/campaigns/decisions.py, through community.moderation), and a moderator can
  approve it only once the organiser has opened the link in that mail.
* **The organiser's links** carry the campaign's id and an HMAC under the site's secret and
  the campaign's nonce: the confirmation link also carries its expiry (CONFIRM_HOURS); the
  private link to manage the campaign does not expire.
* **Slugs** are unique by constraint: a title already taken gets -2, -3 ...
* **The directory's orders**: rising (backers who joined in the last RISING_DAYS days; ties by
  every backer, then the newer campaign), newest, most backed, and closed (newest closed first).
  The digest's "Campaigns gathering backers" is the rising order of those backed in its window
  (``gathering``).
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from aggregator.db import (
    CHANGE_COUNTER,
    campaign_backings,
    campaign_polls,
    campaign_posts,
    campaign_updates,
    campaigns,
    insert_for,
    next_counter,
    reading,
    utcnow,
    writing,
)
from aggregator.errors import HustingsError
from aggregator.settings import Settings
from index.query import QueryError, parse_query
from index.schema import make_schema

from .. import identity, outbox, ratelimits
from ..addresses import BadAddress, normal_address
from ..moderation_log import log_action
from . import letters
from .text import one_line, slug_of

CONFIRM_HOURS = 48  # the organiser's confirmation link works this long
MAILS_PER_DAY = "5/1d"  # confirmation mails one address is sent, at most (then silence): no mail-bombing by form
RISING_DAYS = 7  # rising: backers who joined in this many days
PER_PAGE = 20
SORTS = ("rising", "new", "backed", "closed")
STATUSES = ("pending", "open", "rejected", "closed")
OUTCOMES = ("won", "ended")
LIMITS = {"title": 200, "idea": 5000, "ask": 2000, "ask_of": 300, "organiser": 120, "query": 500}


class CampaignError(HustingsError):
    """A proposal or an update that cannot be taken; `field` names the form field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Campaign:
    id: int
    slug: str
    title: str
    idea: str
    ask: str
    ask_of: str
    organiser: str
    contact: str
    contact_confirmed_at: datetime | None
    nonce: str
    query: str
    status: str
    outcome: str
    backers: int
    reason: str
    decided_by: str
    created_at: datetime
    opened_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, row) -> "Campaign":
        return cls(**{k: row._mapping[k] for k in cls.__dataclass_fields__})

    @property
    def public(self) -> bool:
        """Shown to readers: open, or closed with its record kept."""
        return self.status in ("open", "closed")

    @property
    def confirmed(self) -> bool:
        return self.contact_confirmed_at is not None

    def to_json(self, base: str = "") -> dict:
        """What /api/campaigns and `hustings campaigns list --json` say (never the contact or nonce)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("contact", "nonce", "contact_confirmed_at")}
        for k in ("created_at", "opened_at", "closed_at", "updated_at"):
            out[k] = out[k].isoformat() if out[k] else None
        out["confirmed"] = self.confirmed
        out["link"] = f"{base}/campaigns/{self.slug}"
        return out


# --- links ---------------------------------------------------------------------------------------------


def manage_token(settings: Settings, c: Campaign) -> str:
    return f"{c.id}.{identity.keyed(settings, 'campaign-manage', str(c.id), c.nonce)[:32]}"


def confirm_token(settings: Settings, c: Campaign, now: datetime) -> str:
    expires = int((now + timedelta(hours=CONFIRM_HOURS)).timestamp())
    return f"{c.id}.{expires}.{identity.keyed(settings, 'campaign-confirm', str(c.id), c.nonce, str(expires))[:32]}"


def url(settings: Settings, path: str, token: str = "") -> str:
    return f"{settings.site_url.rstrip('/')}{path}" + (f"?token={token}" if token else "")


def manage_url(settings: Settings, c: Campaign) -> str:
    return url(settings, f"/campaigns/{c.slug}/manage", manage_token(settings, c))


def _token_id(token: str, parts: int) -> list[str] | None:
    bits = (token or "").strip().split(".")
    if len(bits) != parts or len(token) > 120 or not all(b.isdigit() and len(b) < 19 for b in bits[:-1]):
        return None
    return bits


def by_manage_token(engine: Engine, settings: Settings, slug: str, token: str) -> Campaign | None:
    """The campaign a private link belongs to, or None (a wrong link, or another campaign's)."""
    bits = _token_id(token, 2)
    c = get(engine, int(bits[0])) if bits else None
    if c is None or c.slug != slug or not secrets.compare_digest(manage_token(settings, c), token.strip()):
        return None
    return c


def confirm_contact(engine: Engine, settings: Settings, slug: str, token: str,
                    now: datetime | None = None) -> tuple[str, Campaign | None]:
    """Open the organiser's confirmation link: ("confirmed" | "already" | "expired" | "invalid", campaign).
    The first confirmation also sends the organiser their private link."""
    now = now or utcnow()
    bits = _token_id(token, 3)
    c = get(engine, int(bits[0])) if bits else None
    if c is None or c.slug != slug:
        return "invalid", None
    expected = identity.keyed(settings, "campaign-confirm", str(c.id), c.nonce, bits[1])[:32]
    if not secrets.compare_digest(expected, bits[2]):
        return "invalid", None
    if c.confirmed:
        return "already", c
    if int(bits[1]) < now.timestamp():
        return "expired", c
    with writing(engine) as conn:
        done = conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id, campaigns.c.contact_confirmed_at.is_(None))
                            .values(contact_confirmed_at=now, updated_at=now)).rowcount
        if done:
            subject, body = letters.organiser_link(settings, c.title, manage_url(settings, c),
                                                   url(settings, f"/campaigns/{c.slug}"))
            outbox.queue(conn, c.contact, subject, body, "campaign-link", now)
    return ("confirmed" if done else "already"), get(engine, c.id)


def resend_confirmation(engine: Engine, settings: Settings, c: Campaign, now: datetime | None = None) -> str:
    """Another confirmation mail for an unconfirmed organiser: "sent", "limited" or "already"."""
    now = now or utcnow()
    if c.confirmed:
        return "already"
    if settings.rate_limits and ratelimits.hit(engine, settings, "campaign-mail", c.contact, MAILS_PER_DAY,
                                               now.timestamp()):
        return "limited"
    with writing(engine) as conn:
        _queue_confirmation(conn, settings, c, now)
    return "sent"


def _queue_confirmation(conn: Connection, settings: Settings, c: Campaign, now: datetime) -> None:
    subject, body = letters.organiser_confirmation(
        settings, c.title, url(settings, f"/campaigns/{c.slug}/confirm", confirm_token(settings, c, now)), CONFIRM_HOURS)
    outbox.queue(conn, c.contact, subject, body, "campaign-confirm", now)


# --- proposing -----------------------------------------------------------------------------------------


def clean_proposal(*, title: str, idea: str, ask: str, ask_of: str, organiser: str, contact: str,
                   query: str) -> dict:
    """The proposal as it will be stored. Raises CampaignError naming the first field at fault."""
    values = {"title": one_line(title), "idea": (idea or "").strip(), "ask": (ask or "").strip(),
              "ask_of": one_line(ask_of), "organiser": one_line(organiser), "query": one_line(query)}
    for field, what in (("title", "a title"), ("idea", "the idea"), ("ask", "what the campaign asks for"),
                        ("organiser", "the organiser's name")):
        if not values[field]:
            raise CampaignError(field, f"give {what}")
    for field, most in LIMITS.items():
        if len(values[field]) > most:
            raise CampaignError(field, f"{field.replace('_', ' ')} is {len(values[field]):,} characters: keep it "
                                       f"to {most:,}")
    if len(values["title"]) < 5:
        raise CampaignError("title", "give a title of five characters or more")
    try:
        values["contact"] = normal_address(contact)
    except BadAddress as exc:
        raise CampaignError("contact", str(exc)) from None
    values["query"] = check_query(values["query"])
    return values


def check_query(query: str) -> str:
    """A campaign's search, checked as the search page would read it ('' is no search)."""
    query = one_line(query)
    if query:
        try:
            parse_query(make_schema(), query)
        except QueryError as exc:
            raise CampaignError("query", f"the search: {exc}") from None
    return query


def propose(engine: Engine, settings: Settings, *, title: str, idea: str, ask: str, ask_of: str = "",
            organiser: str, contact: str, query: str = "", now: datetime | None = None) -> Campaign:
    """Record a pending campaign and send its organiser the confirmation link. Raises CampaignError."""
    now = now or utcnow()
    values = clean_proposal(title=title, idea=idea, ask=ask, ask_of=ask_of, organiser=organiser, contact=contact,
                            query=query)
    limited = settings.rate_limits and ratelimits.hit(engine, settings, "campaign-mail", values["contact"],
                                                      MAILS_PER_DAY, now.timestamp())
    base = slug_of(values["title"])
    with writing(engine) as conn:
        campaign_id = None
        for n in range(1, 1000):
            slug = base if n == 1 else f"{base[:70]}-{n}"
            stmt = insert_for(engine)(campaigns).values(
                slug=slug, nonce=secrets.token_hex(16), status="pending", created_at=now, updated_at=now, **values)
            campaign_id = conn.execute(stmt.on_conflict_do_nothing(index_elements=["slug"])
                                       .returning(campaigns.c.id)).scalar()
            if campaign_id is not None:
                break
        c = Campaign.of(conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).one())
        log_action(conn, "organiser", "propose_campaign", target_type="proposal", target_id=c.id,
                   target_label=f"campaign proposal {c.id}",
                   reason="waiting for the organiser to confirm their address, then for a moderator", at=now)
        if not limited:
            _queue_confirmation(conn, settings, c, now)
    return c


# --- reading ---------------------------------------------------------------------------------------------


def get(engine: Engine, campaign_id: int) -> Campaign | None:
    if not 0 < campaign_id < 2**62:
        return None
    with reading(engine) as conn:
        row = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).first()
    return Campaign.of(row) if row is not None else None


def by_slug(engine: Engine, slug: str) -> Campaign | None:
    with reading(engine) as conn:
        row = conn.execute(sa.select(campaigns).where(campaigns.c.slug == slug[:80])).first()
    return Campaign.of(row) if row is not None else None


def find(engine: Engine, ref: str) -> Campaign | None:
    """A campaign by its number or its slug (the command takes either)."""
    ref = (ref or "").strip()
    return get(engine, int(ref)) if ref.isascii() and ref.isdigit() and len(ref) < 19 else by_slug(engine, ref)


def rising_counts(conn: Connection, since: datetime):
    return (sa.select(campaign_backings.c.campaign_id, sa.func.count().label("recent"))
            .where(campaign_backings.c.created_at >= since).group_by(campaign_backings.c.campaign_id).subquery())


def directory(engine: Engine, sort: str = "rising", *, page: int = 1, per_page: int = PER_PAGE,
              now: datetime | None = None) -> tuple[list[tuple[Campaign, int]], bool]:
    """One page of the directory in `sort` order: (campaign, its backers in the last RISING_DAYS days), and
    whether there is a next page."""
    if sort not in SORTS:
        raise HustingsError(f"sort by one of {', '.join(SORTS)}")
    now = now or utcnow()
    with reading(engine) as conn:
        recent = rising_counts(conn, now - timedelta(days=RISING_DAYS))
        n = sa.func.coalesce(recent.c.recent, 0)
        query = sa.select(campaigns, n.label("recent")).outerjoin(recent, recent.c.campaign_id == campaigns.c.id)
        order = {
            "rising": (n.desc(), campaigns.c.backers.desc(), campaigns.c.opened_at.desc(), campaigns.c.id.desc()),
            "new": (campaigns.c.opened_at.desc(), campaigns.c.id.desc()),
            "backed": (campaigns.c.backers.desc(), campaigns.c.opened_at.desc(), campaigns.c.id.desc()),
            "closed": (campaigns.c.closed_at.desc(), campaigns.c.id.desc()),
        }[sort]
        query = query.where(campaigns.c.status == ("closed" if sort == "closed" else "open")).order_by(*order)
        rows = conn.execute(query.limit(per_page + 1).offset((page - 1) * per_page)).all()
    return [(Campaign.of(r), int(r.recent)) for r in rows[:per_page]], len(rows) > per_page


def gathering(engine: Engine, *, since: datetime, until: datetime, limit: int = 3) -> list[tuple[Campaign, int]]:
    """The digest's campaigns: open ones that gained a backer in [since, until), in the directory's rising
    order as of `until`, each with its backers in the RISING_DAYS before `until`. One query, no paging."""
    week = until - timedelta(days=RISING_DAYS)
    b = campaign_backings.c
    recent = (sa.select(b.campaign_id, sa.func.sum(sa.case((b.created_at >= week, 1), else_=0)).label("recent"),
                        sa.func.max(b.created_at).label("last_at"))
              .where(b.created_at >= min(since, week), b.created_at < until).group_by(b.campaign_id).subquery())
    query = (sa.select(campaigns, recent.c.recent).join(recent, recent.c.campaign_id == campaigns.c.id)
             .where(campaigns.c.status == "open", recent.c.last_at >= since)
             .order_by(recent.c.recent.desc(), campaigns.c.backers.desc(), campaigns.c.opened_at.desc(),
                       campaigns.c.id.desc()).limit(limit))
    with reading(engine) as conn:
        return [(Campaign.of(r), int(r.recent)) for r in conn.execute(query)]


def listing(engine: Engine, status: str | None = None) -> list[Campaign]:
    """Every campaign (or those with `status`), newest first: for moderators and the command."""
    query = sa.select(campaigns).order_by(campaigns.c.id.desc())
    if status:
        query = query.where(campaigns.c.status == status)
    with reading(engine) as conn:
        return [Campaign.of(r) for r in conn.execute(query)]


def last_change(engine: Engine) -> datetime | None:
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.max(campaigns.c.updated_at))).scalar()


@dataclass(frozen=True)
class Entry:
    """An organiser's update or a recorded response."""

    id: int
    kind: str
    body: str
    responder: str
    role: str
    recorded_by: str
    created_at: datetime


def entries(engine: Engine, campaign_id: int, kind: str | None = None, limit: int = 200) -> list[Entry]:
    """Updates and responses, newest first."""
    query = (sa.select(campaign_updates).where(campaign_updates.c.campaign_id == campaign_id)
             .order_by(campaign_updates.c.created_at.desc(), campaign_updates.c.id.desc()).limit(limit))
    if kind:
        query = query.where(campaign_updates.c.kind == kind)
    with reading(engine) as conn:
        return [Entry(r.id, r.kind, r.body, r.responder, r.role, r.recorded_by, r.created_at) for r in conn.execute(query)]


def post_marks(engine: Engine, campaign_id: int) -> dict[int, str]:
    """post id -> "pinned" | "removed", for the posts the organiser or a moderator marked."""
    with reading(engine) as conn:
        return {r.post_id: r.state for r in conn.execute(
            sa.select(campaign_posts.c.post_id, campaign_posts.c.state)
            .where(campaign_posts.c.campaign_id == campaign_id).order_by(campaign_posts.c.at.desc()))}


def linked_polls(engine: Engine, campaign_id: int) -> list[int]:
    with reading(engine) as conn:
        return [r[0] for r in conn.execute(sa.select(campaign_polls.c.poll_id)
                                           .where(campaign_polls.c.campaign_id == campaign_id)
                                           .order_by(campaign_polls.c.poll_id))]


def set_query(engine: Engine, c: Campaign, query: str, now: datetime | None = None) -> Campaign:
    """The organiser's (or a moderator's) new search for posts about the campaign. Raises CampaignError."""
    query = check_query(query)
    with writing(engine) as conn:
        conn.execute(sa.update(campaigns).where(campaigns.c.id == c.id).values(query=query, updated_at=now or utcnow()))
        next_counter(conn, CHANGE_COUNTER)  # its cached JSON lists other posts now
    return get(engine, c.id)
