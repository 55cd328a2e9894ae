"""Validating a submitted voting form into a Ballot, with a reason for every refusal.

Part of the reader polls package: see community/polls/model.py for the rules every
part keeps (no database, no clock, no request; integer arithmetic; every decision in words).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .model import _ID, _RANK_FIELD, IGNORED_FIELDS, Ballot, BallotError, Option, Poll


def _show(value: object, limit: int = 30) -> str:
    """A submitted value quoted for an error message, cut short so a hostile form
    cannot fill the page with it."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "…"
    return f"“{text}”"


def _values(form: Mapping[str, Sequence[str] | str], name: str) -> list[str]:
    raw = form[name]
    # A bare string is one value (iterating it would give its characters).
    values = [raw] if isinstance(raw, str) else list(raw)
    for v in values:
        if not isinstance(v, str):
            raise BallotError("The form was malformed. Please reload the poll and try again.")
    return values


def validate_ballot(poll: Poll, form: Mapping[str, Sequence[str] | str], *,
                    ignore: Iterable[str] = IGNORED_FIELDS) -> Ballot:
    """Turn a submitted voting form (field -> list of values, as a form parser gives)
    into a Ballot, or raise BallotError saying what is wrong in words a voter
    understands. It does not check whether the poll is open: that needs the clock
    (see `is_open`), and a late voter deserves that message rather than this one.

    single:   exactly one `option` value, an option id.
    multiple: one or more distinct `option` values, at most `max_choices`.
    ranked:   `rank_<option id>` fields, each "" (not ranked) or 1..N (N = number of
              options); the ranks used must be 1, 2, 3... with no gaps or repeats,
              and at least one option must be ranked.
    Fields in `ignore` (the CSRF token) are skipped; any other field is refused.
    """
    ignored = set(ignore)
    fields = [name for name in form if name not in ignored]
    if poll.kind == "ranked":
        return _validate_ranked(poll, form, fields)
    for name in fields:
        # Rules: a choice form has only `option` fields; anything else is junk.
        if name != "option":
            raise BallotError(f"The form had an unexpected field {_show(name)}. "
                              "Please reload the poll and try again.")
    # Blank values are "no choice" (e.g. a "none selected" radio), not an error.
    values = [v.strip() for v in (_values(form, "option") if "option" in form else [])]
    values = [v for v in values if v]
    chosen: list[Option] = []
    for v in values:
        # Rule: every value must be the id of one of this poll's options.
        option = poll._by_id.get(int(v)) if _ID.fullmatch(v) else None
        if option is None:
            raise BallotError(f"{_show(v)} is not one of this poll's options. "
                              "Please reload the poll and try again.")
        chosen.append(option)
    if not chosen:
        raise BallotError("Please choose an option before voting." if poll.kind == "single"
                          else "Please choose at least one option before voting.")
    if poll.kind == "single":
        # Rule: a single-choice ballot names exactly one option.
        if len(chosen) > 1:
            raise BallotError("Please choose only one option.")
        return Ballot(poll.id, (chosen[0].id,))
    # Rule (multiple): each option at most once; a repeat is a tampered form, and
    # silently merging it would hide that.
    seen: set[int] = set()
    for option in chosen:
        if option.id in seen:
            raise BallotError(f"You chose {_show(option.label, 60)} more than once.")
        seen.add(option.id)
    # Rule (multiple): no more than max_choices options, when the poll sets a limit.
    if poll.max_choices is not None and len(chosen) > poll.max_choices:
        most = "1 option" if poll.max_choices == 1 else f"{poll.max_choices} options"
        raise BallotError(f"Please choose at most {most} (you chose {len(chosen)}).")
    ordered = tuple(o.id for o in poll.options if o.id in seen)
    return Ballot(poll.id, ordered)


def _validate_ranked(poll: Poll, form: Mapping[str, Sequence[str] | str], fields: list[str]) -> Ballot:
    n = len(poll.options)
    ranks: dict[int, Option] = {}  # rank -> option
    seen_options: set[int] = set()
    for name in fields:
        m = _RANK_FIELD.fullmatch(name)
        # Rule: a ranked form has only rank_<option id> fields.
        if m is None:
            raise BallotError(f"The form had an unexpected field {_show(name)}. "
                              "Please reload the poll and try again.")
        key = m.group(1)
        option = poll._by_id.get(int(key)) if _ID.fullmatch(key) else None
        # Rule: the id in the field name must be one of this poll's options.
        if option is None:
            raise BallotError(f"The form asked to rank {_show(key)}, which is not one of this "
                              "poll's options. Please reload the poll and try again.")
        # Rule: one rank per option ("rank_3" and "rank_03" are the same option).
        values = [v.strip() for v in _values(form, name)]
        if option.id in seen_options or len(values) > 1:
            raise BallotError(f"The form gave more than one rank for {_show(option.label, 60)}.")
        seen_options.add(option.id)
        value = values[0] if values else ""
        if value == "":
            continue  # left blank: not ranked, which is allowed
        # Rule: a rank is a whole number from 1 to N.
        rank = int(value) if _ID.fullmatch(value) else 0
        if not 1 <= rank <= n:
            raise BallotError(f"The rank for {_show(option.label, 60)} must be a number from 1 to {n}, "
                              f"or left blank (you entered {_show(value)}).")
        # Rule: each rank is used once.
        if rank in ranks:
            raise BallotError(f"You gave rank {rank} to both {_show(ranks[rank].label, 60)} and "
                              f"{_show(option.label, 60)}. Each rank can be used only once.")
        ranks[rank] = option
    # Rule: at least one option ranked.
    if not ranks:
        raise BallotError("Please rank at least one option (1 for your first choice).")
    # Rule: ranks run 1, 2, 3... with no gap, so "first choice" always means rank 1
    # and no voter's intent has to be guessed from a gap.
    for rank in range(1, max(ranks) + 1):
        if rank not in ranks:
            raise BallotError(f"Ranks must run 1, 2, 3… without gaps: you used rank {max(ranks)} "
                              f"but not rank {rank}.")
    return Ballot(poll.id, tuple(ranks[r].id for r in sorted(ranks)))


def _check_ballot(poll: Poll, ballot: Ballot) -> tuple[int, ...]:
    """A stored ballot, checked against the poll before it is counted. These can only
    fail if the data was changed behind validate_ballot's back (or a ballot from
    another poll was passed in), and then no result may be printed."""
    if not isinstance(ballot, Ballot):
        raise TypeError(f"expected a Ballot, got {type(ballot).__name__}")
    if ballot.poll_id != poll.id:
        raise ValueError(f"a ballot for poll {ballot.poll_id} was passed to the count of poll {poll.id}")
    choices = tuple(ballot.choices)
    if not choices:
        raise ValueError(f"an empty ballot was passed to the count of poll {poll.id}")
    for c in choices:
        if c not in poll._by_id:
            raise ValueError(f"a ballot names option {c!r}, which is not in poll {poll.id}")
    if len(set(choices)) != len(choices):
        raise ValueError(f"a ballot names an option more than once: {choices}")
    if poll.kind == "single" and len(choices) != 1:
        raise ValueError(f"a single-choice ballot names {len(choices)} options")
    if poll.kind == "multiple" and poll.max_choices is not None and len(choices) > poll.max_choices:
        raise ValueError(f"a ballot names {len(choices)} options, more than max_choices={poll.max_choices}")
    return choices


