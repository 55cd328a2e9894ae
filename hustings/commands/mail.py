"""`hustings mail`: deliver the outbox now, or send a test message (community/mailer.py).

The worker delivers on its own every half minute; these are for operators: to push the
queue out now (`--all` ignores the backoff of deferred messages) and to check that the
SMTP settings work.
"""

from __future__ import annotations

import sys

from community import mailer

from .context import EXIT_FAILED, EXIT_OK, Context, print_json


def register(sub) -> None:
    mail = sub.add_parser("mail", help="deliver the outbox over SMTP now, or send a test message")
    msub = mail.add_subparsers(dest="mail_command", metavar="SUBCOMMAND", required=True)
    s = msub.add_parser("deliver", help="deliver the messages that are due now")
    s.add_argument("--all", action="store_true", help="also those waiting to be tried again after a 4xx")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_mail_deliver)
    s = msub.add_parser("test", help="send a test message to ADDRESS through the configured SMTP server")
    s.add_argument("address")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_mail_test)


def report_dict(report: mailer.Report) -> dict:
    return {"sent": report.sent, "deferred": report.deferred, "failed": report.failed, "cancelled": report.cancelled,
            "error": report.error, "failures": report.failures}


def print_summary(report: mailer.Report) -> None:
    print(f"mail: {report.sent} sent, {report.deferred} deferred (tried again later), {report.failed} failed, "
          f"{report.cancelled} cancelled")
    for line in report.failures[:20]:
        print(f"  failed: {line}")


def exit_code(report: mailer.Report) -> int:
    """1, with the reason on standard error, when the server could not be reached."""
    if report.error:
        print(f"hustings: {report.error}; what is left is tried again later", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_mail_deliver(ctx: Context, args) -> int:
    report = mailer.deliver(ctx.engine, ctx.settings, ignore_backoff=args.all)
    if args.json:
        print_json(report_dict(report))
    else:
        print_summary(report)
    return exit_code(report)


def cmd_mail_test(ctx: Context, args) -> int:
    message_id = mailer.queue_test(ctx.engine, ctx.settings, args.address)
    report = mailer.deliver(ctx.engine, ctx.settings)
    outcome = mailer.outcome_of(ctx.engine, message_id)
    if args.json:
        print_json({"id": message_id, **outcome, "run": report_dict(report)})
    elif outcome["status"] == "sent":
        print(f"test message sent to {args.address.strip().lower()} through {ctx.settings.smtp_host}:"
              f"{ctx.settings.smtp_port}")
    else:
        print(f"hustings: the test message was not sent ({outcome['status']}): {outcome['last_error']}",
              file=sys.stderr)
    return EXIT_OK if outcome["status"] == "sent" else EXIT_FAILED
