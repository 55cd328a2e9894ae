"""`hustings moderator add`: moderator accounts (they sign in at /login)."""

from __future__ import annotations

import sys

from community import accounts

from .context import EXIT_OK, EXIT_USAGE, Context, print_json


def register(sub) -> None:
    moderator = sub.add_parser("moderator", help="moderator accounts")
    msub = moderator.add_subparsers(dest="moderator_command", metavar="SUBCOMMAND", required=True)
    s = msub.add_parser("add", help="add a moderator (the password is asked for, or read from standard input)")
    s.add_argument("email")
    s.add_argument("--password-stdin", action="store_true", help="read the password from the first line of standard input")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_moderator_add)


def cmd_moderator_add(ctx: Context, args) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        password = getpass.getpass(f"password for {args.email}: ")
        if getpass.getpass("again: ") != password:
            print("hustings: the two passwords differ; nothing changed", file=sys.stderr)
            return EXIT_USAGE
    moderator = accounts.add_moderator(ctx.engine, args.email, password)
    if args.json:
        print_json({"id": moderator.id, "email": moderator.email})
    else:
        print(f"moderator {moderator.email} added (id {moderator.id}); they sign in at /login")
    return EXIT_OK
