"""`hustings digest`: preview an issue, or send it now (community/digest.py).

The worker sends each issue at `digest_send_time` by itself; `send` is for sending by hand
(early, late, or again after adding subscribers: it never sends one issue twice to anyone).
"""

from __future__ import annotations

from datetime import date

from aggregator.db import utcnow
from aggregator.errors import HustingsError
from community import digest, digest_render, mailer

from .context import EXIT_OK, Context, print_json
from .mail import exit_code, print_summary, report_dict


def register(sub) -> None:
    d = sub.add_parser("digest", help="the daily and weekly digest: preview or send an issue")
    dsub = d.add_subparsers(dest="digest_command", metavar="SUBCOMMAND", required=True)
    for name, func, text in (
            ("preview", cmd_digest_preview, "print an issue as plain text (as built, or as it would be built now)"),
            ("send", cmd_digest_send, "build the issue if needed and deliver it to confirmed subscribers")):
        s = dsub.add_parser(name, help=text)
        s.add_argument("--period", choices=digest.PERIODS, default="daily")
        s.add_argument("--date", metavar="YYYY-MM-DD", help="the issue published that day (weekly: that week); "
                                                            "default today, in digest_timezone")
        s.add_argument("--json", action="store_true")
        s.set_defaults(func=func)


def _key(ctx: Context, args) -> str:
    day = None
    if args.date:
        try:
            day = date.fromisoformat(args.date)
        except ValueError:
            raise HustingsError(f"--date {args.date!r}: give a date as YYYY-MM-DD") from None
    return digest.current_key(ctx.settings, args.period, utcnow(), day)


def _issue_json(issue: digest.Issue) -> dict:
    return {"id": issue.id, "period": issue.period, "key": issue.key, "subject": issue.subject,
            "starts_at": issue.starts_at, "ends_at": issue.ends_at, "built": issue.id is not None,
            "path": issue.path, "content": issue.content}


def cmd_digest_preview(ctx: Context, args) -> int:
    issue = digest.preview(ctx.engine, ctx.settings, args.period, _key(ctx, args))
    base = ctx.settings.site_url.rstrip("/")
    text = digest_render.text(ctx.settings, issue, digest_render.for_reader(issue), base + "/subscribe/manage?token=...",
                              base + issue.path)
    if args.json:
        print_json(dict(_issue_json(issue), text=text))
    else:
        print(f"Subject: {issue.subject}\n")
        print(text)
    return EXIT_OK


def cmd_digest_send(ctx: Context, args) -> int:
    issue = digest.build(ctx.engine, ctx.settings, args.period, _key(ctx, args))
    queued = digest.queue(ctx.engine, issue)
    if not ctx.settings.smtp_host:
        raise HustingsError(f"issue {issue.key} built and {queued} messages queued, but no SMTP server is set "
                            "(smtp_host): they are sent when one is")
    report = mailer.deliver(ctx.engine, ctx.settings)
    if args.json:
        print_json({"issue": _issue_json(issue), "queued": queued, "delivery": report_dict(report)})
    else:
        print(f"digest {issue.period} {issue.key}: {issue.subject}")
        print(f"{queued} messages queued for subscribers who had not had it")
        print_summary(report)
    return exit_code(report)
