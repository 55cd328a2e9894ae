"""`hustings campaigns`: list campaigns, and approve, refuse, close or edit one.

Approving, refusing, closing and editing are moderator actions: they go through community.moderation,
as the forms at /moderate/campaigns and on a campaign's page do, and each writes its line in the
public moderation log and tells the organiser (and, on closing, the backers who asked for updates).
"""

from __future__ import annotations

import sys

from aggregator.errors import NotFound
from community import moderation
from community.campaigns import backing, store

from .context import EXIT_OK, EXIT_USAGE, Context, actor, add_actor_option, print_json, refusal_names, when

EDIT_OPTIONS = {"title": "--title", "idea": "--idea", "ask": "--ask", "ask_of": "--ask-of", "query": "--query"}


def register(sub) -> None:
    campaigns = sub.add_parser("campaigns", help="members' campaigns: list, approve, reject, close, edit")
    csub = campaigns.add_subparsers(dest="campaigns_command", metavar="SUBCOMMAND", required=True)
    s = csub.add_parser("list", help="every campaign with its state, backers and whether its organiser confirmed")
    s.add_argument("--status", choices=store.STATUSES, help="only campaigns in this state")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)
    s = csub.add_parser("approve", help="publish a pending campaign whose organiser confirmed their address (logged)")
    s.add_argument("campaign", metavar="ID|SLUG")
    s.add_argument("--reason", default="", help="a note for the public moderation log")
    add_actor_option(s, "approved it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_approve)
    s = csub.add_parser("reject", help="refuse a pending campaign, for a reason the house rules give (logged)")
    s.add_argument("campaign", metavar="ID|SLUG")
    s.add_argument("--reason", required=True, help="why (public)")
    add_actor_option(s, "refused it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_reject)
    s = csub.add_parser("close", help="close an open campaign, won or ended (logged)")
    s.add_argument("campaign", metavar="ID|SLUG")
    s.add_argument("--reason", required=True, help="why (public)")
    s.add_argument("--won", action="store_true", help="the campaign got what it asked for")
    add_actor_option(s, "closed it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_close)
    s = csub.add_parser("edit", help="change a campaign's words: title, idea, ask, of whom, search (logged)")
    s.add_argument("campaign", metavar="ID|SLUG")
    s.add_argument("--title", metavar="T", help="the new title (its address stays the same)")
    s.add_argument("--idea", metavar="TEXT", help="the new idea (Markdown or plain text)")
    s.add_argument("--ask", metavar="TEXT", help="what it asks for, anew (Markdown or plain text)")
    s.add_argument("--ask-of", metavar="TEXT", help="of whom it asks (\"\" for no one in particular)")
    s.add_argument("--query", metavar="Q", help="the search that finds posts about it (\"\" for none)")
    s.add_argument("--reason", required=True, help="why (public, with the fields changed)")
    add_actor_option(s, "edited it")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_edit)


def _find(ctx: Context, ref: str) -> store.Campaign:
    c = store.find(ctx.engine, ref)
    if c is None:
        raise NotFound(f"there is no campaign {ref!r}")
    return c


def _json(ctx: Context, c: store.Campaign) -> dict:
    out = c.to_json(ctx.settings.site_url.rstrip("/"))
    out["bursts"] = len(backing.bursts(ctx.engine, c.id))
    return out


def cmd_list(ctx: Context, args) -> int:
    campaigns = store.listing(ctx.engine, args.status)
    if args.json:
        print_json({"campaigns": [_json(ctx, c) for c in campaigns]})
        return EXIT_OK
    if not campaigns:
        print("no campaigns" + (f" {args.status}" if args.status else " yet"))
    for c in campaigns:
        state = c.status + (f" ({c.outcome})" if c.outcome else "") + ("" if c.confirmed else ", unconfirmed")
        print(f"{c.id:>5}  {state:<22}  {c.backers:>7} backers  {when(c.created_at)}  {c.slug}  {c.title}")
    return EXIT_OK


def _done(ctx: Context, args, c: store.Campaign, words: str) -> int:
    if args.json:
        print_json(_json(ctx, c))
    else:
        print(f"campaign {c.id} {words}: {c.title!r}; its page: /campaigns/{c.slug}")
    return EXIT_OK


def cmd_approve(ctx: Context, args) -> int:
    with refusal_names("campaign", args.campaign):
        c = _find(ctx, args.campaign)
        c = moderation.approve_campaign(ctx.engine, ctx.settings, c.id, actor=actor(args), reason=args.reason)
    return _done(ctx, args, c, "published")


def cmd_reject(ctx: Context, args) -> int:
    with refusal_names("campaign", args.campaign):
        c = _find(ctx, args.campaign)
        c = moderation.reject_campaign(ctx.engine, ctx.settings, c.id, actor=actor(args), reason=args.reason)
    return _done(ctx, args, c, "refused")


def cmd_close(ctx: Context, args) -> int:
    with refusal_names("campaign", args.campaign):
        c = _find(ctx, args.campaign)
        c = moderation.close_campaign(ctx.engine, ctx.settings, c.id, actor=actor(args), reason=args.reason,
                                      outcome="won" if args.won else "ended")
    return _done(ctx, args, c, "closed as won" if args.won else "closed")


def cmd_edit(ctx: Context, args) -> int:
    changes = {field: getattr(args, field) for field in EDIT_OPTIONS}
    if all(v is None for v in changes.values()):
        print(f"hustings: give what to change: {', '.join(EDIT_OPTIONS.values())}", file=sys.stderr)
        return EXIT_USAGE
    with refusal_names("campaign", args.campaign):
        before = _find(ctx, args.campaign)
        try:
            c = moderation.edit_campaign(ctx.engine, ctx.settings, before.id, actor=actor(args), reason=args.reason,
                                         **changes)
        except store.CampaignError as exc:  # what was typed is at fault: a usage error, naming the option
            print(f"hustings: {EDIT_OPTIONS.get(exc.field, '--' + exc.field) + ': ' if exc.field else ''}{exc}",
                  file=sys.stderr)
            return EXIT_USAGE
    changed = [field for field in EDIT_OPTIONS if getattr(before, field) != getattr(c, field)]
    return _done(ctx, args, c, f"edited ({', '.join(changed)})")
