"""SQLAlchemy Core tables, the engine, and Alembic migrations. Long because it is the
schema of every table in one place: Alembic compares the migrations against this one
MetaData, and one file is where a reader sees every table, key and index together.

SQLite (WAL, foreign keys on, synchronous=FULL) in the data directory is the
embedded default; any SQLAlchemy URL works through ``database_url``. Every
query elsewhere is dialect-neutral Core; parameters are always bound.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from .errors import SchemaError
from .settings import Settings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class UTCDateTime(sa.types.TypeDecorator):
    """Stores naive UTC, returns aware UTC: the same on SQLite and PostgreSQL."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given; use timezone-aware UTC")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False, unique=True),
    sa.Column("previous_url", sa.String(2048), nullable=False, server_default=""),
    sa.Column("site_url", sa.String(2048), nullable=False, server_default=""),
    sa.Column("title", sa.String(500), nullable=False, server_default=""),
    sa.Column("category", sa.String(500), nullable=False, server_default=""),
    sa.Column("kind", sa.String(16), nullable=False, server_default="feed"),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    # Validators for conditional GET, and a hash of the last body for servers that ignore them.
    sa.Column("etag", sa.String(500), nullable=False, server_default=""),
    sa.Column("last_modified", sa.String(100), nullable=False, server_default=""),
    sa.Column("body_hash", sa.String(64), nullable=False, server_default=""),
    # Schedule.
    sa.Column("interval_s", sa.Integer, nullable=False, server_default="3600"),
    sa.Column("next_check_at", UTCDateTime, nullable=True, index=True),
    # A worker's claim on a due feed (feed_store.claim_due): who, and until when. Cleared by
    # the fetch's result; a claim whose time has passed belongs to a worker that died.
    sa.Column("claimed_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("last_checked_at", UTCDateTime, nullable=True),
    sa.Column("last_success_at", UTCDateTime, nullable=True),
    # Errors.
    sa.Column("error_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("last_error_at", UTCDateTime, nullable=True),
    # Spiders (migration 0003): a CSS selector for post content that overrides the guess;
    # full text from each post's page: 'auto' (summary-only entries), 'on' or 'off';
    # when a crawl last walked the whole blog (after that, crawls stop at what they know).
    sa.Column("content_selector", sa.String(500), nullable=False, server_default=""),
    sa.Column("fulltext", sa.String(8), nullable=False, server_default="auto"),
    sa.Column("crawled_all_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

fetches = sa.Table(
    "fetches",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="fetch"),  # fetch | crawl | fulltext
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False, server_default="0"),
    sa.Column("http_status", sa.Integer, nullable=True),
    sa.Column("bytes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("not_modified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("new_posts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_posts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("final_url", sa.String(2048), nullable=False, server_default=""),
    sa.Column("error", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_fetches_feed_started", "feed_id", "started_at"),
)

posts = sa.Table(
    "posts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("guid", sa.String(2048), nullable=False, server_default=""),
    sa.Column("url", sa.String(2048), nullable=False, server_default=""),
    sa.Column("url_norm", sa.String(2048), nullable=False, server_default="", index=True),
    sa.Column("title", sa.String(1000), nullable=False, server_default=""),
    sa.Column("author", sa.String(500), nullable=False, server_default=""),
    sa.Column("published", UTCDateTime, nullable=False),  # the feed's claim, never after first_seen: what ranks
    sa.Column("published_claimed", UTCDateTime, nullable=True),  # as the feed said it, if it did
    sa.Column("first_seen", UTCDateTime, nullable=False, index=True),  # when we first saw it
    sa.Column("updated_at", UTCDateTime, nullable=False),  # last time its content changed here
    sa.Column("content_html", sa.Text, nullable=False, server_default=""),  # sanitised
    sa.Column("summary", sa.Text, nullable=False, server_default=""),  # plain text
    sa.Column("tags", sa.Text, nullable=False, server_default="[]"),  # JSON list of strings
    sa.Column("summary_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("content_hash", sa.String(64), nullable=False, server_default=""),
    # Increases on every change the search index must see (new, updated, hidden, deleted).
    sa.Column("change_seq", sa.BigInteger, nullable=False, server_default="0", index=True),
    # Set when the same article was first seen in another feed: listed once, linked here.
    sa.Column("duplicate_of", sa.Integer, sa.ForeignKey("posts.id", ondelete="SET NULL"), nullable=True),
    sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("hidden_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("hidden_at", UTCDateTime, nullable=True),
    # Tombstone: content wiped, the row kept so the next fetch does not bring it back.
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("deleted_at", UTCDateTime, nullable=True),
    # Editor's pick: shown in its own labelled slot, never as a boost to the ranking.
    sa.Column("featured_at", UTCDateTime, nullable=True, index=True),
    sa.Column("featured_by", sa.String(320), nullable=False, server_default=""),
    # Readers' recommendations, counted here in the transaction that records each one.
    sa.Column("recommendations", sa.Integer, nullable=False, server_default="0", index=True),  # max() for ranking
    # Full text taken from the post's page (migration 0003): when it was last tried, and
    # why it failed ('' when it worked). content_hash stays the feed's version's, so a
    # refetch of the same summary leaves the full text alone.
    sa.Column("fulltext_at", UTCDateTime, nullable=True),
    sa.Column("fulltext_error", sa.Text, nullable=False, server_default=""),
    sa.UniqueConstraint("feed_id", "key"),
    sa.Index("ix_posts_feed_first_seen", "feed_id", "first_seen"),
    # Ranking, /new and blog pages order and age posts by their own date (migration 0008).
    sa.Index("ix_posts_published", "published"),
    sa.Index("ix_posts_feed_published", "feed_id", "published"),
)

# Named counters kept in one row each; bumped inside the writing transaction so
# numbers are handed out in commit order on every database.
counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.BigInteger, nullable=False, server_default="0"),
)


# --- the community (issue 5): moderators, readers' recommendations and ballots, polls,
# submissions, the outbox and the public moderation log. Uniqueness that matters (one
# recommendation per reader per post, one ballot per voter per poll) is a constraint here,
# never a check-then-insert in code.

moderators = sa.Table(
    "moderators",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # stored lower-cased
    sa.Column("password_hash", sa.String(255), nullable=False),  # argon2id, parameters in the hash
    sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_login_at", UTCDateTime, nullable=True),
)

sessions = sa.Table(
    "sessions",
    metadata,
    # The cookie holds a random token; only its SHA-256 is stored, so a leaked database
    # row cannot be replayed as a session.
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("moderator_id", sa.Integer, sa.ForeignKey("moderators.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
)

rate_hits = sa.Table(
    "rate_hits",
    metadata,
    # Fixed windows shared by every web process: (what, who) and the window's start.
    sa.Column("key", sa.String(200), primary_key=True),  # "action:<keyed hash of who>", never an address
    sa.Column("window_start", sa.BigInteger, primary_key=True),  # epoch seconds
    sa.Column("hits", sa.Integer, nullable=False, server_default="0"),
    sa.Index("ix_rate_hits_window_start", "window_start"),  # the hourly purge (migration 0010)
)

sign_in_failures = sa.Table(
    "sign_in_failures",
    metadata,
    # Failed sign-ins, shown to the moderator whose address was typed (community/signin.py);
    # forgotten after 30 days. No address is stored: the account and the client are keyed hashes.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account", sa.String(64), nullable=False),  # keyed hash of the address typed
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("client", sa.String(16), nullable=False, server_default=""),  # a few characters of a day-salted hash
    sa.Column("known_device", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_sign_in_failures_account_at", "account", "at"),
)

recommendations = sa.Table(
    "recommendations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reader", sa.String(64), nullable=False),  # keyed hash of the reader cookie
    sa.Column("ip_hash", sa.String(64), nullable=False, server_default=""),  # salted daily, so it expires
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("post_id", "reader"),
)

polls = sa.Table(
    "polls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("question", sa.String(500), nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("kind", sa.String(16), nullable=False),  # single | multiple | ranked
    sa.Column("max_choices", sa.Integer, nullable=True),  # multiple choice: at most this many
    sa.Column("visibility", sa.String(16), nullable=False),  # always | after_vote | after_close | moderators
    sa.Column("integrity", sa.String(16), nullable=False),  # cookie | ip: what one ballot is per
    sa.Column("ip_salt", sa.String(64), nullable=False, server_default=""),  # per poll; wiped after it closes
    sa.Column("opens_at", UTCDateTime, nullable=False),
    sa.Column("closes_at", UTCDateTime, nullable=True),
    sa.Column("created_by", sa.String(320), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

poll_options = sa.Table(
    "poll_options",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("label", sa.String(300), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
)

ballots = sa.Table(
    "ballots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id", ondelete="CASCADE"), nullable=False),
    sa.Column("voter", sa.String(64), nullable=False),  # the reader's or the address's keyed hash, per the poll's integrity
    sa.Column("reader", sa.String(64), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("poll_id", "voter"),
)

ballot_choices = sa.Table(
    "ballot_choices",
    metadata,
    sa.Column("ballot_id", sa.Integer, sa.ForeignKey("ballots.id", ondelete="CASCADE"), primary_key=True),
    # RESTRICT: an option someone voted for cannot be deleted, by code or by hand.
    sa.Column("option_id", sa.Integer, sa.ForeignKey("poll_options.id", ondelete="RESTRICT"), primary_key=True),
    sa.Column("rank", sa.Integer, nullable=True),  # ranked polls: 1 is the first preference
)

ballot_rejections = sa.Table(
    "ballot_rejections",
    metadata,
    # Counted in the results' methodology box: duplicates, votes after closing, invalid forms.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),  # as the blogger typed it
    sa.Column("feed_url", sa.String(2048), nullable=False, server_default=""),  # the feed chosen
    sa.Column("name", sa.String(300), nullable=False, server_default=""),
    sa.Column("contact", sa.String(320), nullable=False, server_default=""),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),  # pending | approved | rejected
    sa.Column("check_json", sa.Text, nullable=False, server_default="{}"),  # the feed check shown to moderators
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id", ondelete="SET NULL"), nullable=True),
    sa.Column("token", sa.String(64), nullable=False, server_default=""),  # ownership check
    sa.Column("verified_at", UTCDateTime, nullable=True),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("decided_at", UTCDateTime, nullable=True),
    sa.Column("decided_by", sa.String(320), nullable=False, server_default=""),
)

outbox = sa.Table(
    "outbox",
    metadata,
    # Every message the site sends (bloggers' notices, confirmations, digests), one row each,
    # delivered over SMTP by community/mailer.py with retries (migration 0009, docs/mail.md).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("to_address", sa.String(320), nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("body", sa.Text, nullable=False),  # plain text; a digest's is made for its reader when sent
    sa.Column("html_body", sa.Text, nullable=False, server_default=""),  # an HTML alternative, if any
    sa.Column("kind", sa.String(32), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False, server_default="queued"),  # queued | sent | failed | cancelled
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),  # backoff after a 4xx; NULL: at once
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    # A sender's claim (like feeds'): who, and until when; a claim whose time passed, or whose
    # process on this host is gone, is taken over, so a killed sender repeats at most one message.
    sa.Column("claimed_by", sa.String(200), nullable=False, server_default=""),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=True),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("digest_issues.id", ondelete="CASCADE"), nullable=True),
    # A message sent to a list that is not the digest (a campaign's updates, migration 0011): its
    # one-click unsubscribe address, for the List-Unsubscribe headers (community/mail_compose.py).
    sa.Column("list_unsubscribe", sa.String(2048), nullable=False, server_default=""),
    sa.UniqueConstraint("issue_id", "subscriber_id"),  # exactly one digest per issue per subscriber
    sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    # Readers of the digest (issue 12). Double opt-in: nothing but the confirmation is sent
    # until confirmed_at. A subscriber who leaves is deleted after the bounce window.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # normalised (community/addresses.py)
    sa.Column("frequency", sa.String(8), nullable=False, server_default="daily"),  # daily | weekly
    sa.Column("categories", sa.Text, nullable=False, server_default="[]"),  # JSON list; empty: every category
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),  # pending|confirmed|suspended|left
    sa.Column("nonce", sa.String(32), nullable=False),  # keys the subscriber's links; new when they come back
    sa.Column("source", sa.String(32), nullable=False, server_default="web"),  # web | command line | import
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("confirm_sent_at", UTCDateTime, nullable=True),
    sa.Column("confirmed_at", UTCDateTime, nullable=True),
    sa.Column("left_at", UTCDateTime, nullable=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),  # permanent failures in a row
    sa.Column("last_failure", sa.Text, nullable=False, server_default=""),
    sa.Index("ix_subscribers_status_frequency", "status", "frequency"),
)

digest_issues = sa.Table(
    "digest_issues",
    metadata,
    # One issue of the digest, fixed when built: the archive and every subscriber's copy agree.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("period", sa.String(8), nullable=False),  # daily | weekly
    sa.Column("key", sa.String(10), nullable=False),  # 2026-12-05 | 2026-W49: the day or week it is published
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("content", sa.Text, nullable=False),  # JSON: posts, picks, polls, new blogs, the editor's note
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("queued_at", UTCDateTime, nullable=True),  # when its subscribers' outbox rows were written
    sa.UniqueConstraint("period", "key"),
)

digest_notes = sa.Table(
    "digest_notes",
    metadata,
    # The editor's note for an issue not built yet, written at /moderate/digest.
    sa.Column("period", sa.String(8), primary_key=True),
    sa.Column("key", sa.String(10), primary_key=True),
    sa.Column("body", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_by", sa.String(320), nullable=False, server_default=""),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# --- campaigns (issue 13): members' ideas, their backers, updates and responses (migration 0011).
# One back per reader per campaign is the unique constraint on campaign_backings, never a check in code.

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("slug", sa.String(80), nullable=False, unique=True),  # its address: /campaigns/<slug>
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("idea", sa.Text, nullable=False),  # Markdown or plain text, as typed; rendered safely when shown
    sa.Column("ask", sa.Text, nullable=False),  # what it asks for
    sa.Column("ask_of", sa.String(300), nullable=False, server_default=""),  # and of whom
    sa.Column("organiser", sa.String(120), nullable=False),  # the organiser's public name
    sa.Column("contact", sa.String(320), nullable=False),  # never shown; normalised (community/addresses.py)
    sa.Column("contact_confirmed_at", UTCDateTime, nullable=True),  # the link in the confirmation mail was opened
    sa.Column("nonce", sa.String(32), nullable=False),  # keys the organiser's private links
    sa.Column("query", sa.String(500), nullable=False, server_default=""),  # finds posts about it in the index
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),  # pending|open|rejected|closed
    sa.Column("outcome", sa.String(16), nullable=False, server_default=""),  # closed: won | ended
    sa.Column("backers", sa.Integer, nullable=False, server_default="0"),  # counted with each back
    sa.Column("reason", sa.Text, nullable=False, server_default=""),  # the moderator's, for a refusal or closing
    sa.Column("decided_by", sa.String(320), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=True),  # approved: published from then
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_campaigns_status_opened_at", "status", "opened_at"),
)

campaign_backings = sa.Table(
    "campaign_backings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("reader", sa.String(64), nullable=False),  # keyed hash of the reader cookie
    sa.Column("ip_hash", sa.String(64), nullable=False, server_default=""),  # salted daily: bursts, then unlinkable
    sa.Column("listed_name", sa.String(120), nullable=False, server_default=""),  # shown only if they chose so
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("campaign_id", "reader"),
    sa.Index("ix_campaign_backings_campaign_created", "campaign_id", "created_at"),
    sa.Index("ix_campaign_backings_created_at", "created_at"),  # rising: backs of the last 7 days
)

campaign_followers = sa.Table(
    "campaign_followers",
    metadata,
    # Backers who asked for the organiser's updates by mail: double opt-in, one-click unsubscribe.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),  # normalised
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),  # pending | confirmed | left
    sa.Column("nonce", sa.String(32), nullable=False),  # keys their links; new when they come back
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("confirm_sent_at", UTCDateTime, nullable=True),
    sa.Column("confirmed_at", UTCDateTime, nullable=True),
    sa.Column("left_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("campaign_id", "email"),
)

campaign_updates = sa.Table(
    "campaign_updates",
    metadata,
    # The organiser's updates and the responses moderators record from named representatives.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # update | response
    sa.Column("body", sa.Text, nullable=False),  # Markdown or plain text
    sa.Column("responder", sa.String(200), nullable=False, server_default=""),  # a response: who answered
    sa.Column("role", sa.String(200), nullable=False, server_default=""),  # and as what (MP for ..., councillor)
    sa.Column("recorded_by", sa.String(320), nullable=False, server_default=""),  # the moderator, for a response
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_campaign_updates_campaign_created", "campaign_id", "created_at"),
)

campaign_posts = sa.Table(
    "campaign_posts",
    metadata,
    # Posts the organiser or a moderator pinned to a campaign, or took off it (its query found them).
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("post_id", sa.Integer, sa.ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # pinned | removed
    sa.Column("by", sa.String(320), nullable=False, server_default=""),
    sa.Column("at", UTCDateTime, nullable=False),
)

campaign_polls = sa.Table(
    "campaign_polls",
    metadata,
    # Reader polls a moderator linked to a campaign: its page shows the open ones.
    sa.Column("campaign_id", sa.Integer, sa.ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("poll_id", sa.Integer, sa.ForeignKey("polls.id", ondelete="CASCADE"), primary_key=True),
)

moderation_log = sa.Table(
    "moderation_log",
    metadata,
    # Public: who did what, to what, why and when; "system" for automatic actions.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(320), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False, server_default=""),
    sa.Column("target_id", sa.Integer, nullable=True),
    sa.Column("target_label", sa.String(500), nullable=False, server_default=""),
    sa.Column("reason", sa.Text, nullable=False, server_default=""),
)

feed_events = sa.Table(
    "feed_events",
    metadata,
    # What happened to a feed or post that people must hear of (a feed gone or failing, a
    # post's date clamped), written by the aggregator in the transaction of the change and
    # handled by community.notices (the public log's line, the blogger's message).
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("feed_id", sa.Integer, nullable=False),
    sa.Column("post_id", sa.Integer, nullable=True),
    sa.Column("label", sa.String(500), nullable=False, server_default=""),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("handled_at", UTCDateTime, nullable=True, index=True),
)


workers = sa.Table(
    "workers",
    metadata,
    # Every `hustings worker` process, seen by its heartbeat; the leader (aggregator/cluster.py)
    # records when it took the lead. Read by `hustings status`.
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False, server_default=""),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("seen_at", UTCDateTime, nullable=False, index=True),
    sa.Column("leader_since", UTCDateTime, nullable=True),
    sa.Column("backend_pid", sa.Integer, nullable=True),  # PostgreSQL: the session holding the leader lock
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    # Take over transaction control from pysqlite so BEGIN is ours (see _sqlite_on_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    # FULL: a committed vote, ballot or moderator action survives a power cut, not just
    # a process crash; measured nearly free here (docs/performance.md).
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    # Keep the WAL from growing without bound between checkpoints.
    cur.execute("PRAGMA journal_size_limit=67108864")
    cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Writers take the write lock up front: a deferred transaction that reads and then
    # writes can fail with SQLITE_BUSY without waiting, when another writer got in first.
    if conn.get_execution_options().get("hustings_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_engine(settings: Settings) -> Engine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    return engine


@contextlib.contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction: committed on success, rolled back on error."""
    with engine.connect().execution_options(hustings_write=True) as conn:
        with conn.begin():
            yield conn


@contextlib.contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        yield conn


CHANGE_COUNTER = "post_change"  # the counter every change the index and page caches must see takes a number from


def insert_for(engine: Engine):
    """INSERT with ON CONFLICT for the dialect in use (both support RETURNING)."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def unreachable(exc: BaseException | None) -> bool:
    """Whether `exc` says the database could not be reached (down, restarting, connection lost),
    as opposed to a bug in a query: the web answers 503 and Retry-After for these."""
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) and _connection_error(exc)


def _connection_error(exc: sa.exc.DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return any(words in text for words in (
        "connection", "server closed", "terminating", "shutting down", "starting up", "could not connect",
        "the database system is", "unable to open database file"))


def serialise_on(conn: Connection, namespace: int, key: str) -> None:
    """Make concurrent write transactions about the same `key` take turns, until commit.

    SQLite needs nothing (BEGIN IMMEDIATE already admits one writer at a time); PostgreSQL
    takes a transaction advisory lock on (namespace, hash of key), so a check-then-insert
    that no unique constraint can express (one ballot per reader across addresses) stays
    exactly-once there too. Namespaces: 1 poll ballots by reader."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:ns, hashtext(:key))"), {"ns": namespace, "key": key})


def next_counter(conn: Connection, name: str, n: int = 1) -> int:
    """Reserve n numbers from counter `name`; returns the first. Call inside a write."""
    # UPDATE ... RETURNING (SQLite >= 3.35, PostgreSQL): one round trip, and the row
    # lock it takes orders concurrent writers.
    value = conn.execute(
        sa.update(counters).where(counters.c.name == name).values(value=counters.c.value + n)
        .returning(counters.c.value)
    ).scalar()
    if value is None:
        conn.execute(sa.insert(counters).values(name=name, value=n))
        value = n
    return value - n + 1


# --- migrations ----------------------------------------------------------------


def _alembic_config(conn: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = conn
    return cfg


def head_revision() -> str:
    """The newest migration's revision, from the scripts' file names alone.

    Every script is NNNN_name.py with revision 'NNNN', each one after the last, so the
    highest number is Alembic's head (tests/test_migrations.py holds Alembic to that).
    Reading a directory costs nothing; importing Alembic to ask it cost 0.15 s of every
    command's start (issue 15).
    """
    return max(p.name.split("_", 1)[0] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(engine: Engine) -> str | None:
    """The database's schema revision (None: no schema yet), read from Alembic's own table."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table("alembic_version"):
            return None
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return ",".join(sorted(versions)) or None


def migrate(engine: Engine) -> tuple[str | None, str]:
    """Create or upgrade the schema to the newest revision. Returns (before, after)."""
    from alembic import command
    from alembic.util import CommandError

    before = current_revision(engine)
    try:
        with engine.connect().execution_options(hustings_write=True) as conn:
            with conn.begin():
                command.upgrade(_alembic_config(conn), "head")
    except CommandError as exc:
        raise SchemaError(
            f"the database is at schema revision {before}, which this code does not know "
            f"(made by a newer Hustings?): {exc}"
        ) from None
    return before, head_revision()


def check_schema(engine: Engine) -> None:
    """Raises SchemaError unless the database is at the newest revision."""
    current = current_revision(engine)
    head = head_revision()
    if current is None:
        raise SchemaError("the database has no schema yet: run `hustings init`")
    if current != head:
        raise SchemaError(
            f"the database schema is at revision {current}, this code needs {head}: run `hustings init`"
        )
