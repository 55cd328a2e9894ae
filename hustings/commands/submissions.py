"""`hustings submissions`: the queue of blogs submitted at /submit; approve or reject one.

Approving and rejecting are moderator actions: they go through community.moderation, as the
forms at /moderate/queue do, and each writes its line in the public moderation log and
queues the blogger's message in the same transaction.
"""

from __future__ import annotations

from community import moderation, submissions

from .context import EXIT_OK, Context, actor, add_actor_option, print_json, refusal_names, when

SUBMISSION_KEYS = ("id", "status", "name", "url", "feed_url", "feed_id", "feed_status", "contact", "note",
                   "verified_at", "created_at", "decided_at", "decided_by", "reason", "check")


def register(sub) -> None:
    subs = sub.add_parser("submissions", help="blogs submitted at /submit: list, approve, reject")
    ssub = subs.add_subparsers(dest="submissions_command", metavar="SUBCOMMAND", required=True)
    s = ssub.add_parser("list", help="the submissions waiting for a moderator, oldest first")
    s.add_argument("--all", action="store_true", help="decided ones too, newest first")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_submissions_list)
    s = ssub.add_parser("approve", help="put a submitted blog on the site and fetch it (logged)")
    s.add_argument("id", type=int)
    s.add_argument("--reason", default="", help="a note for the public moderation log and the blogger")
    s.add_argument("--name", default="", help="the blog's name on the site (default: as submitted)")
    s.add_argument("--category", default="", help='category path, e.g. "Branches / North"')
    add_actor_option(s, "approved it")
    s.set_defaults(func=cmd_submissions_approve)
    s = ssub.add_parser("reject", help="keep a submitted blog off the site (logged)")
    s.add_argument("id", type=int)
    s.add_argument("--reason", required=True, help="why (required; shown in the public moderation log)")
    add_actor_option(s, "rejected it")
    s.set_defaults(func=cmd_submissions_reject)


def cmd_submissions_list(ctx: Context, args) -> int:
    rows = submissions.listing(ctx.engine, None if args.all else "pending", limit=10_000)
    rows = [{k: r.get(k) for k in SUBMISSION_KEYS} for r in rows]  # never the blogger's private token
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print("no submissions yet" if args.all else "no submissions are waiting")
    for r in rows:
        name = r["name"] or (r["check"] or {}).get("title") or "(unnamed)"
        feed = f"feed {r['feed_id']}" if r["feed_id"] else "no feed"
        print(f"{r['id']:>5}  {r['status']:<8}  submitted {when(r['created_at'])}  {feed}  {name}\n"
              f"       {r['feed_url'] or r['url']}\n"
              f"       contact: {r['contact'] or 'none given'}; "
              f"{'verified ' + when(r['verified_at']) if r['verified_at'] else 'ownership not verified'}")
        if r["status"] != "pending":
            print(f"       {r['status']} {when(r['decided_at'])} by {r['decided_by'] or 'a moderator'}"
                  + (f": {r['reason']}" if r["reason"] else ""))
    return EXIT_OK


def cmd_submissions_approve(ctx: Context, args) -> int:
    with refusal_names("submission", args.id):
        sub = moderation.approve_submission(
            ctx.engine, args.id, actor=actor(args), reason=args.reason, name=args.name, category=args.category,
            site_name=ctx.settings.site_name, site_url=ctx.settings.site_url)
    print(f"submission {args.id} approved: feed {sub['feed_id']} ({sub['feed_url']}) is on the site; "
          "it is fetched by the next `hustings fetch` or worker pass")
    ctx.sync_index(quiet=True)
    return EXIT_OK


def cmd_submissions_reject(ctx: Context, args) -> int:
    with refusal_names("submission", args.id):
        sub = submissions.get(ctx.engine, args.id)
        moderation.reject_submission(ctx.engine, args.id, actor=actor(args), reason=args.reason,
                                     site_name=ctx.settings.site_name, status_url=_status_url(ctx, sub))
    print(f"submission {args.id} rejected: {args.reason.strip()}")
    return EXIT_OK


def _status_url(ctx: Context, sub: dict | None) -> str:
    """The blogger's private page for their submission, as the web's reject form links it."""
    if sub is None:
        return ""  # no such submission: reject_submission says so

    return ctx.settings.site_url.rstrip("/") + submissions.status_path(ctx.settings, sub)
