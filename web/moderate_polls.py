"""The moderators' forms for reader polls: create one (/moderate/polls/new) and close one.
Both go through community.moderation, which writes the moderation log.
"""

from __future__ import annotations

import bottle

from aggregator.errors import HustingsError, NotFound
from community import moderation, polls
from community.polls import store as poll_store

from .poll_pages import render
from .request import Out, Site, Visitor, login_path, require_moderator

VISIBILITY_CHOICES = {
    "always": "Everyone, while the poll is open too",
    "after_vote": "Each reader after voting; everyone once it closes",
    "after_close": "Everyone, once the poll closes",
    "moderators": "Moderators only",
}
FORM_FIELDS = ("question", "description", "options", "kind", "max_choices", "opens_at", "closes_at", "visibility",
               "integrity")
DEFAULT_FORM = {"question": "", "description": "", "options": "", "kind": "single", "max_choices": "",
                "opens_at": "", "closes_at": "", "visibility": "after_vote", "integrity": "cookie"}


def _new_form(site: "Site", values: dict, error: str = "", status: int = 200) -> "Out":
    return render(site, "poll_new.html", status=status, title="Create a poll", values=values, error=error,
                  kinds=polls.KINDS, visibilities=VISIBILITY_CHOICES)


def poll_new_form(site: "Site", params: dict) -> "Out":
    require_moderator(site)
    return _new_form(site, dict(DEFAULT_FORM))


def poll_create(site: "Site", v: "Visitor", form: dict) -> "str | Out":
    mod = v.moderator
    if mod is None:
        return login_path("/moderate/polls/new")
    values = {name: (form.get(name) or [DEFAULT_FORM[name]])[0] for name in FORM_FIELDS}
    try:
        max_choices = values["max_choices"].strip()
        if max_choices and not (max_choices.isascii() and max_choices.isdigit() and len(max_choices) < 4):
            raise poll_store.PollError("the maximum number of choices must be a whole number, "
                                       f"not {max_choices[:20]!r}")
        record = moderation.create_poll(
            site.engine, actor=mod.email, question=values["question"], description=values["description"],
            options=values["options"].splitlines(), kind=values["kind"],
            max_choices=int(max_choices) if max_choices and values["kind"] == "multiple" else None,
            opens_at=poll_store.parse_time(values["opens_at"], "opening time"),
            closes_at=poll_store.parse_time(values["closes_at"], "closing time"),
            visibility=values["visibility"], integrity=values["integrity"])
    except HustingsError as exc:
        return _new_form(site, values, error=str(exc), status=400)
    return f"/polls/{record.id}"


def poll_close(site: "Site", v: "Visitor", form: dict, poll_id: int) -> str:
    mod = v.moderator
    if mod is None:
        return login_path(f"/polls/{poll_id}")
    try:
        moderation.close_poll(site.engine, poll_id, actor=mod.email)
    except NotFound as exc:
        raise bottle.HTTPError(404, str(exc)) from None
    except HustingsError as exc:
        raise bottle.HTTPError(409, str(exc)) from None
    return f"/polls/{poll_id}/results"
