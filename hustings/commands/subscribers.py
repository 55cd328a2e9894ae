"""`hustings subscribers`: the digest's readers (community/subscriptions.py).

`add` and `import` ask each address to confirm, as the web form does, unless `--confirmed`
says the reader already agreed elsewhere (a paper form, another list): double opt-in is the
default for every address.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from aggregator.errors import HustingsError
from community import subscriptions
from community.addresses import BadAddress, normal_address

from .context import EXIT_FAILED, EXIT_OK, Context, print_json, when

STATUSES = ("pending", "confirmed", "suspended", "left")


def register(sub) -> None:
    s_ = sub.add_parser("subscribers", help="the digest's subscribers: list, add, import, remove")
    ssub = s_.add_subparsers(dest="subscribers_command", metavar="SUBCOMMAND", required=True)
    s = ssub.add_parser("list", help="every subscriber with their state and frequency")
    s.add_argument("--status", choices=STATUSES, help="only these")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)
    s = ssub.add_parser("add", help="add addresses (each is asked to confirm, unless --confirmed)")
    s.add_argument("emails", nargs="+", metavar="EMAIL")
    s.add_argument("--confirmed", action="store_true", help="they agreed elsewhere: no confirmation mail")
    s.add_argument("--frequency", choices=subscriptions.FREQUENCIES, default="daily")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_add)
    s = ssub.add_parser("import", help="add the addresses in a CSV file (columns: email, optional frequency)")
    s.add_argument("file", metavar="FILE.csv")
    s.add_argument("--confirmed", action="store_true", help="they agreed elsewhere: no confirmation mail")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_import)
    s = ssub.add_parser("remove", help="delete an address now, with every message to it")
    s.add_argument("email")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_remove)


def _row(sub: subscriptions.Subscriber) -> dict:
    return {"id": sub.id, "email": sub.email, "status": sub.status, "frequency": sub.frequency,
            "categories": list(sub.categories), "source": sub.source, "created_at": sub.created_at,
            "confirmed_at": sub.confirmed_at, "left_at": sub.left_at, "failures": sub.failures}


def cmd_list(ctx: Context, args) -> int:
    subs = subscriptions.list_all(ctx.engine, args.status)
    if args.json:
        print_json({"subscribers": [_row(s) for s in subs]})
        return EXIT_OK
    if not subs:
        print("no subscribers" + (f" {args.status}" if args.status else ""))
    for s in subs:
        print(f"{s.id:>6}  {s.status:<9}  {s.frequency:<6}  since {when(s.confirmed_at or s.created_at)}  {s.email}"
              + (f"  ({', '.join(s.categories)})" if s.categories else ""))
    return EXIT_OK


def _add_all(ctx: Context, rows: list[tuple[str, str]], confirmed: bool, source: str) -> list[dict]:
    done = []
    for email, frequency in rows:
        try:
            outcome = subscriptions.add(ctx.engine, ctx.settings, email, frequency=frequency, confirmed=confirmed,
                                        source=source)
        except HustingsError as exc:  # BadAddress included: one bad line never stops the rest
            done.append({"email": email, "outcome": "refused", "why": str(exc)})
        else:
            done.append({"email": normal_address(email), "outcome": outcome})
    return done


WORDS = {"added": "added, confirmed", "confirm": "asked to confirm", "already": "already subscribed",
         "limited": "not mailed again today (asked three times already)"}


def _print(done: list[dict], args) -> int:
    if args.json:
        print_json({"subscribers": done})
    else:
        for d in done:
            print(f"{d['email']}: {d['why'] if d['outcome'] == 'refused' else WORDS.get(d['outcome'], d['outcome'])}")
    refused = sum(d["outcome"] == "refused" for d in done)
    if refused:
        print(f"hustings: {refused} address{'es' if refused != 1 else ''} refused", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_add(ctx: Context, args) -> int:
    return _print(_add_all(ctx, [(e, args.frequency) for e in args.emails], args.confirmed, "command line"), args)


def cmd_import(ctx: Context, args) -> int:
    path = Path(args.file)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise HustingsError(f"{path}: {getattr(exc, 'strerror', None) or exc}") from None
    rows = []
    for n, cells in enumerate(csv.reader(text.splitlines()), 1):
        cells = [c.strip() for c in cells]
        if not cells or not cells[0] or (n == 1 and cells[0].lower() in ("email", "e-mail", "address")):
            continue
        frequency = cells[1].lower() if len(cells) > 1 and cells[1] else "daily"
        rows.append((cells[0], frequency))
    return _print(_add_all(ctx, rows, args.confirmed, "import"), args)


def cmd_remove(ctx: Context, args) -> int:
    try:
        removed = subscriptions.remove(ctx.engine, args.email)
    except BadAddress as exc:
        raise HustingsError(str(exc)) from None
    if args.json:
        print_json({"email": args.email.strip().lower(), "removed": removed})
    elif removed:
        print(f"{args.email.strip().lower()} deleted, with every message to it")
    else:
        print(f"hustings: {args.email.strip().lower()} is not a subscriber", file=sys.stderr)
    return EXIT_OK if removed else EXIT_FAILED
