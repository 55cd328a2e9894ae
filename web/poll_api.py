"""Reader polls as JSON (/api/polls, /api/polls/<id>): the same polls, visibility and
counts as the pages (poll_pages.py), for tools.
"""

from __future__ import annotations

import json
from datetime import datetime

from community import polls
from community.polls import store as poll_store
from community.polls.store import PollRecord

from .pages import iso
from .poll_pages import now, record_or_404, seen_by, tally
from .request import Out, Site, Visitor, visitor


def _pct(text: str) -> float:
    return float(text)


def result_json(result: polls.Result | polls.IRVResult) -> dict:
    if isinstance(result, polls.Result):
        return {
            "method": "plurality", "ballots": result.ballots, "choices": result.choices,
            "options": [{"id": c.option.id, "label": c.option.label, "votes": c.votes,
                         "percent": _pct(c.percent_text)} for c in result.counts],
            "leaders": [o.id for o in result.leaders], "tie": result.tie, "note": result.note,
        }
    return {
        "method": "instant_runoff", "ballots": result.ballots,
        "winner": result.winner.id if result.winner else None, "tied": [o.id for o in result.tied],
        "tie": result.tie, "note": result.note,
        "rounds": [{
            "round": r.number, "continuing": r.continuing, "exhausted": r.exhausted, "needed": r.needed,
            "tallies": [{"id": t.option.id, "label": t.option.label, "votes": t.votes,
                         "percent": _pct(t.percent_text)} for t in r.tallies],
            "winner": r.winner.id if r.winner else None, "tied": [o.id for o in r.tied],
            "eliminated": r.eliminated.id if r.eliminated else None,
            "transfers": [{"to": o.id if o else None, "ballots": n} for o, n in r.transfers],
            "tie_break": r.tie_break or None, "reason": r.reason,
        } for r in result.rounds],
    }


def poll_json(site: "Site", v: "Visitor", record: PollRecord, at: datetime) -> dict:
    poll = record.poll
    base = site.settings.site_url.rstrip("/")
    seen = seen_by(site, v, record, at)
    data = {
        "id": poll.id, "question": poll.question, "description": record.description, "kind": poll.kind,
        "max_choices": poll.max_choices,
        "options": [{"id": o.id, "label": o.label, "position": o.position} for o in poll.options],
        "opens_at": iso(poll.opens_at), "closes_at": iso(poll.closes_at) or None, "state": record.state(at),
        "visibility": poll.visibility, "integrity": poll.integrity, "voted": bool(seen.voted),
        "link": f"{base}/polls/{poll.id}", "results_link": f"{base}/polls/{poll.id}/results",
        "csv_link": f"{base}/polls/{poll.id}/results.csv",
        "results_visible": seen.visible,
        "results_visible_from": None if seen.visible else iso(seen.visible_from) or None,
        "results": None, "methodology": None, "rejected": None,
    }
    if not seen.visible:
        data["results_hidden_because"] = seen.hidden_why
        return data
    counted = tally(site, poll)
    data["results"] = result_json(counted.result)
    data["rejected"] = {"total": counted.rejected_total, "by_reason": counted.rejected}
    data["methodology"] = [{"heading": h, "text": t} for h, t in counted.methodology(poll)]
    return data


def _json(data) -> "Out":
    return Out(json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), "application/json")


def api_polls(site: "Site", params: dict) -> "Out":
    at = now()
    v = visitor(site)
    return _json({"polls": [poll_json(site, v, r, at) for r in poll_store.list_polls(site.engine, at, limit=100)]})


def api_poll(site: "Site", params: dict, poll_id: int) -> "Out":
    return _json(poll_json(site, visitor(site), record_or_404(site, poll_id), now()))
