"""`hustings polls`: create, list and close reader polls.

Creating and closing are moderator actions: they go through community.moderation, as the
forms at /moderate/polls/new and /polls/ID do, and each writes its line in the public
moderation log.
"""

from __future__ import annotations

from datetime import datetime

from aggregator import db
from community import moderation
from community.polls import store as poll_store

from .context import COMMAND_LINE_ACTOR, EXIT_OK, Context, actor, print_json, refusal_names, when


def register(sub) -> None:
    polls = sub.add_parser("polls", help="reader polls: create, list, close")
    pollsub = polls.add_subparsers(dest="polls_command", metavar="SUBCOMMAND", required=True)
    s = pollsub.add_parser("create", help="create a poll (listed in the public moderation log)")
    s.add_argument("--question", required=True)
    s.add_argument("--option", action="append", required=True, metavar="LABEL",
                   help="an option, in ballot order (repeat: at least two)")
    s.add_argument("--kind", choices=("single", "multiple", "ranked"), default="single")
    s.add_argument("--max-choices", type=int, metavar="N", help="multiple choice: at most N options per ballot")
    s.add_argument("--description", default="", help="shown above the ballot")
    s.add_argument("--opens", metavar="ISO", help="opening time, ISO 8601, UTC unless it says (default: now)")
    s.add_argument("--closes", metavar="ISO", help="closing time (default: none; close it with `polls close`)")
    s.add_argument("--visibility", choices=("always", "after_vote", "after_close", "moderators"), default="after_vote",
                   help="who sees results: always, after voting, after closing, moderators only")
    s.add_argument("--integrity", choices=("cookie", "ip"), default="cookie",
                   help="one ballot per reader cookie, or per IP address")
    s.add_argument("--by", default=COMMAND_LINE_ACTOR, metavar="NAME", help="who made it (the moderation log)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_polls_create)
    s = pollsub.add_parser("list", help="every poll with its state and ballots counted")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_polls_list)
    s = pollsub.add_parser("close", help="close a poll now (its IP salt is deleted)")
    s.add_argument("id", type=int)
    s.add_argument("--by", default=COMMAND_LINE_ACTOR, metavar="NAME", help="who closed it (the moderation log)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_polls_close)


def _poll_json(record, ballots: int, now: datetime) -> dict:
    poll = record.poll
    return {"id": poll.id, "question": poll.question, "description": record.description, "kind": poll.kind,
            "max_choices": poll.max_choices,
            "options": [{"id": o.id, "label": o.label, "position": o.position} for o in poll.options],
            "opens_at": poll.opens_at, "closes_at": poll.closes_at, "state": record.state(now),
            "visibility": poll.visibility, "integrity": poll.integrity, "ballots": ballots,
            "created_by": record.created_by, "link": f"/polls/{poll.id}"}


def cmd_polls_create(ctx: Context, args) -> int:
    record = moderation.create_poll(
        ctx.engine, actor=actor(args), question=args.question, options=args.option, kind=args.kind,
        description=args.description, max_choices=args.max_choices,
        opens_at=poll_store.parse_time(args.opens or "", "opening time"),
        closes_at=poll_store.parse_time(args.closes or "", "closing time"), visibility=args.visibility,
        integrity=args.integrity)
    if args.json:
        print_json(_poll_json(record, 0, db.utcnow()))
    else:
        poll = record.poll
        print(f"poll {poll.id} created: {poll.question!r}, {poll.kind} choice, {len(poll.options)} options, "
              f"open {when(poll.opens_at)} to {when(poll.closes_at) if poll.closes_at else 'a moderator closes it'}; "
              f"readers vote at /polls/{poll.id}")
    return EXIT_OK


def cmd_polls_list(ctx: Context, args) -> int:
    now = db.utcnow()
    records = poll_store.list_polls(ctx.engine, now, limit=10_000)
    counts = poll_store.ballot_counts(ctx.engine)
    if args.json:
        print_json({"polls": [_poll_json(r, counts.get(r.id, 0), now) for r in records]})
        return EXIT_OK
    if not records:
        print("no polls yet; make one with `hustings polls create`")
    for r in records:
        closes = when(r.poll.closes_at) if r.poll.closes_at else "when closed"
        print(f"{r.id:>5}  {r.state(now):<8}  {r.poll.kind:<8}  {counts.get(r.id, 0):>7} ballots  "
              f"opens {when(r.poll.opens_at)}  closes {closes}  {r.poll.question}")
    return EXIT_OK


def cmd_polls_close(ctx: Context, args) -> int:
    with refusal_names("poll", args.id):
        closed = moderation.close_poll(ctx.engine, args.id, actor=actor(args))
    if args.json:
        print_json({"id": args.id, "closed": closed, "already_closed": not closed})
    elif closed:
        print(f"poll {args.id} closed; its results are at /polls/{args.id}/results")
    else:
        print(f"poll {args.id} had already closed")
    return EXIT_OK
