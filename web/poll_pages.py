"""Reader polls on the site: the list, a poll and its voting form, results (page and CSV).
The same polls as JSON are in poll_api.py, the moderators' forms to create and close
polls in moderate_polls.py.

Voting is a plain form (radio buttons, checkboxes, or a rank select per option) that
works without JavaScript: POST, then 303 to the results. A refused ballot shows the
poll again with the reason (400 for a form that is not a valid ballot, 409 for a
duplicate or a poll that is not open), and every refusal is counted by reason for the
methodology box (community/polls/ballot_store.py).

Who sees results is community.polls.visible_to, applied on every route that shows numbers:
the page, the CSV and the API. Pages that depend on the reader (have they voted, are
they a moderator) are not in the shared page cache; their routes say so in web/app.py.
Counting is kept per process until a poll's ballots change (a new ballot changes the
(count, highest id) stamp), so a much-linked results page does not recount each time.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import bottle
import markupsafe

from community import polls
from community.polls import ballot_store
from community.polls import store as poll_store
from community.polls.store import PollRecord

from .request import Out, Site, Visitor, check_rate, visitor

MAX_BUCKETS_SHOWN = 96  # columns in the moderators' votes-over-time chart, at most
BUCKETS = [timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 180, 360, 720, 1440, 10080, 43200)]
KIND_WORDS = {"single": "Choose one", "multiple": "Choose one or more", "ranked": "Rank in order of preference"}
VISIBILITY_WORDS = {
    "always": "Results are shown to everyone, while the poll is open too.",
    "after_vote": "Results are shown to each reader after they vote, and to everyone once the poll closes.",
    "after_close": "Results are shown when the poll closes.",
    "moderators": "Results are shown only to the site's moderators.",
}


def now() -> datetime:
    return datetime.now(timezone.utc)


def when(value: datetime | None) -> str:
    """"3 May 2026, 09:00 UTC", as the methodology box writes times."""
    if value is None:
        return ""
    v = value.astimezone(timezone.utc)
    return f"{v.day} {v:%B %Y, %H:%M} UTC"


def render(site: "Site", template: str, status: int = 200, last_modified: datetime | None = None,
           **context) -> "Out":
    """A poll page from its template (with the `when` filter the methodology box uses)."""
    return Out(site.render(template, when=when, **context), last_modified=last_modified, status=status)


def record_or_404(site: "Site", poll_id: int) -> PollRecord:
    """The poll, or a 404 that says there is no such poll."""
    record = poll_store.get_poll(site.engine, poll_id)
    if record is None:
        raise bottle.HTTPError(404, f"there is no poll number {poll_id}")
    return record


# --- counting, kept until the ballots change ----------------------------------------------------------------


@dataclass(frozen=True)
class Tally:
    result: polls.Result | polls.IRVResult
    summary: ballot_store.BallotSummary
    rejected: dict[str, int]

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def methodology(self, poll: polls.Poll) -> list[tuple[str, str]]:
        return polls.methodology(poll, counted=self.result.ballots, rejected=self.rejected_total,
                                 rejected_reasons=self.rejected, first_vote_at=self.summary.first_at,
                                 last_vote_at=self.summary.last_at)


_counts: "weakref.WeakKeyDictionary[object, OrderedDict]" = weakref.WeakKeyDictionary()
_counts_lock = threading.Lock()
KEEP_COUNTS = 64


def tally(site: "Site", poll: polls.Poll) -> Tally:
    summary = ballot_store.ballot_summary(site.engine, poll.id)
    key = (poll.id, summary.count, summary.last_id, poll.options, poll.kind)
    with _counts_lock:
        kept = _counts.setdefault(site.engine, OrderedDict())
        result = kept.get(key)
    if result is None:
        ballots = ballot_store.ballots_for(site.engine, poll)
        result = polls.count_irv(poll, ballots) if poll.kind == "ranked" else polls.count_plurality(poll, ballots)
        if result.ballots == summary.count:  # kept only if no ballot arrived between the two reads
            with _counts_lock:
                kept[key] = result
                while len(kept) > KEEP_COUNTS:
                    kept.popitem(last=False)
    # Rejections are read after the ballots: the box never shows fewer than happened.
    return Tally(result, summary, ballot_store.rejection_counts(site.engine, poll.id))


# --- who may see results ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What this reader may see of a poll, and why."""

    voted: str  # '' | 'reader' | 'address' (ballot_store.voted_as)
    moderator: bool
    visible: bool
    visible_from: datetime | None  # when results become visible to everyone, if known
    hidden_why: str  # the sentence to show instead of numbers


def seen_by(site: "Site", v: "Visitor", record: PollRecord, at: datetime) -> Seen:
    poll = record.poll
    voted = ballot_store.voted_as(site.engine, site.settings, poll, v.reader, v.ip)
    moderator = v.moderator is not None
    visible = polls.visible_to(poll, now=at, has_voted=bool(voted), is_moderator=moderator)
    visible_from = poll.closes_at if poll.visibility in ("after_vote", "after_close") else None
    closes = (f"when the poll closes on {when(poll.closes_at)}" if poll.closes_at
              else "when a moderator closes the poll (it has no closing time set)")
    hidden_why = {
        "always": "",
        "after_vote": f"The results are shown once you have voted, and to everyone {closes}.",
        "after_close": f"The results are shown {closes}, so that no one is swayed by the running count.",
        "moderators": "The results of this poll are shown only to the site's moderators.",
    }[poll.visibility]
    return Seen(voted, moderator, visible, visible_from, "" if visible else hidden_why)


# --- the pages ------------------------------------------------------------------------------------------------


def polls_index(site: "Site", params: dict) -> "Out":
    at = now()
    records = poll_store.list_polls(site.engine, at, limit=100)
    groups = {"open": [], "upcoming": [], "closed": []}
    for r in records:
        groups[r.state(at)].append(r)
    # Only a signed-in moderator's copy differs (a link to create a poll), and theirs is never cached.
    moderator = visitor(site).moderator is not None
    return render(site, "polls.html", title="Reader polls", groups=groups, moderator=moderator,
                  kinds=KIND_WORDS, last_modified=poll_store.last_change(records, at))


def _poll_page(site: "Site", v: "Visitor", record: PollRecord, at: datetime, *, error: str = "",
               status: int = 200, form: dict | None = None) -> "Out":
    poll = record.poll
    seen = seen_by(site, v, record, at)
    form = form or {}
    chosen = {x for x in form.get("option", [])}
    ranks = {o.id: (form.get(f"rank_{o.id}") or [""])[0] for o in poll.options}
    return render(site, "poll.html", status=status, title=poll.question, record=record, poll=poll,
                  state=record.state(at), seen=seen, error=error, chosen=chosen, ranks=ranks,
                  kind_words=KIND_WORDS[poll.kind], visibility_words=VISIBILITY_WORDS[poll.visibility],
                  paragraphs=_paragraphs(record.description))


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in text.replace("\r\n", "\n").split("\n\n") if p.strip()]


def poll_page(site: "Site", params: dict, poll_id: int) -> "Out":
    return _poll_page(site, visitor(site), record_or_404(site, poll_id), now())


REFUSED = {
    "closed": (409, "Your ballot was not counted: this poll has closed."),
    "not_open": (409, "Your ballot was not counted: this poll has not opened yet."),
}


def poll_vote(site: "Site", v: "Visitor", form: dict, poll_id: int) -> "str | Out":
    record = record_or_404(site, poll_id)
    poll = record.poll
    at = now()
    try:
        check_rate(site, "poll_vote", site.settings.vote_limit, v.ip)
    except bottle.HTTPError as exc:
        # A ballot turned away by the rate limit is a refused ballot like any other: the
        # methodology box counts it (docs/web.md), and the reader keeps what they chose.
        ballot_store.record_rejection(site.engine, poll.id, "rate_limited", at)
        bottle.response.set_header("Retry-After", exc.headers.get("Retry-After", "60"))
        return _poll_page(site, v, record, at, status=429, form=form,
                          error=f"Your ballot was not counted: {exc.body}.")
    if not polls.is_open(poll, at):
        reason = "closed" if polls.is_closed(poll, at) else "not_open"
        ballot_store.record_rejection(site.engine, poll.id, reason, at)
        status, message = REFUSED[reason]
        return _poll_page(site, v, record, at, error=message, status=status)
    try:
        ballot = polls.validate_ballot(poll, form)
    except polls.BallotError as exc:
        ballot_store.record_rejection(site.engine, poll.id, "invalid", at)
        return _poll_page(site, v, record, at, error=exc.message, status=400, form=form)
    ident = ballot_store.identity(site.engine, site.settings, poll, v.reader, v.ip)
    cast = ballot_store.cast_ballot(site.engine, poll, ballot, ident.voter, ident.reader, at)
    if cast.counted:
        return f"/polls/{poll.id}/results"
    if cast.reason == "duplicate":
        by_address = poll.integrity == "ip" and ballot_store.voted_as(
            site.engine, site.settings, poll, v.reader, v.ip) != "reader"
        if by_address:
            message = ("Your ballot was not counted: a ballot has already been cast in this poll from your internet "
                       "address, and this poll takes one per address, so as far as it can tell you have already "
                       "voted.")
        else:
            message = ("Your ballot was not counted: you have already voted in this poll, and each reader's ballot "
                       "counts once.")
        return _poll_page(site, v, record, at, error=message, status=409)
    status, message = REFUSED[cast.reason]
    return _poll_page(site, v, record, at, error=message, status=status)


def _chart(rows: list[tuple[str, int]], total: int, title: str) -> markupsafe.Markup:
    return markupsafe.Markup(polls.bar_chart_svg(rows, total=total, title=title))


def _bucket(span: timedelta) -> timedelta:
    for size in BUCKETS:
        if span / size <= MAX_BUCKETS_SHOWN:
            return size
    return timedelta(seconds=-(-span.total_seconds() // MAX_BUCKETS_SHOWN))


def over_time(site: "Site", poll: polls.Poll, at: datetime) -> tuple[markupsafe.Markup, list[tuple[datetime, int]],
                                                                        timedelta] | None:
    """The moderators' votes-over-time chart, its bursts and bucket; None before any ballot."""
    times = ballot_store.ballot_times(site.engine, poll.id)
    if not times:
        return None
    start = poll.opens_at
    end = max(min(poll.closes_at, at) if poll.closes_at else at, times[-1], start + timedelta(minutes=1))
    bucket = _bucket(end - start)
    svg, bursts = polls.votes_over_time_svg(times, bucket=bucket, start=start, end=end)
    return markupsafe.Markup(svg), bursts, bucket


def poll_results(site: "Site", params: dict, poll_id: int) -> "Out":
    record = record_or_404(site, poll_id)
    poll = record.poll
    at = now()
    v = visitor(site)
    seen = seen_by(site, v, record, at)
    context: dict = dict(record=record, poll=poll, seen=seen, state=record.state(at),
                         visibility_words=VISIBILITY_WORDS[poll.visibility], paragraphs=_paragraphs(record.description),
                         counted=None, charts=[], method=[], timeline=None, percent_text=polls.percent_text)
    if seen.visible:
        counted = tally(site, poll)
        result = counted.result
        context.update(counted=counted, result=result, method=counted.methodology(poll))
        if isinstance(result, polls.IRVResult):
            context["charts"] = [_chart([(t.option.label, t.votes) for t in r.tallies], r.continuing,
                                        f"Round {r.number}: votes of {r.continuing:,} continuing "
                                        f"ballot{'' if r.continuing == 1 else 's'}")
                                 for r in result.rounds]
        else:
            context["charts"] = [_chart([(c.option.label, c.votes) for c in result.counts], result.ballots,
                                        poll.question)]
        if seen.moderator:
            context["timeline"] = over_time(site, poll, at)
    return render(site, "poll_results.html", title=f"Results: {poll.question}", **context)


def poll_results_csv(site: "Site", params: dict, poll_id: int) -> "Out":
    record = record_or_404(site, poll_id)
    seen = seen_by(site, visitor(site), record, now())
    if not seen.visible:
        raise bottle.HTTPError(403, "the results of this poll are not shown yet. " + seen.hidden_why.rstrip("."))
    body = polls.results_csv(record.poll, tally(site, record.poll).result).encode("utf-8")
    bottle.response.set_header("Content-Disposition", f'attachment; filename="poll-{record.id}-results.csv"')
    return Out(body, "text/csv; charset=utf-8")
