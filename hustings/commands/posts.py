"""`hustings posts`: list stored posts; hide, unhide, feature or unfeature one.

The four actions are moderator actions: they go through community.moderation, as the web's
forms do, and each writes its line in the public moderation log.
"""

from __future__ import annotations

from aggregator import feed_store, post_store
from community import moderation

from .context import EXIT_OK, Context, actor, add_actor_option, print_json, refusal_names, when

POST_KEYS = ("id", "feed_id", "url", "title", "author", "published", "first_seen", "updated_at", "content_html",
             "summary", "tags", "hidden", "duplicate_of")


def register(sub) -> None:
    posts = sub.add_parser("posts", help="list stored posts; hide, unhide, feature or unfeature one")
    posts.add_argument("--feed", metavar="ID|URL")
    posts.add_argument("--limit", type=int, default=50)
    posts.add_argument("--include-hidden", action="store_true")
    posts.add_argument("--json", action="store_true")
    posts.set_defaults(func=cmd_posts)
    psub = posts.add_subparsers(dest="posts_command", metavar="SUBCOMMAND")
    s = psub.add_parser("hide", help="take a post off every page (it stays hidden on refetch)")
    s.add_argument("id", type=int)
    s.add_argument("--reason", required=True, help="why (required; shown in the public moderation log)")
    add_actor_option(s, "hid it")
    s.set_defaults(func=cmd_posts_hide)
    s = psub.add_parser("unhide", help="show a hidden post again")
    s.add_argument("id", type=int)
    s.add_argument("--reason", default="", help="why (shown in the public moderation log)")
    add_actor_option(s, "showed it again")
    s.set_defaults(func=cmd_posts_unhide)
    s = psub.add_parser("feature", help="make a post an editor's pick (its own labelled slot)")
    s.add_argument("id", type=int)
    s.add_argument("--reason", default="", help="why (shown in the public moderation log)")
    add_actor_option(s, "picked it")
    s.set_defaults(func=cmd_posts_feature)
    s = psub.add_parser("unfeature", help="take a post out of the editor's picks")
    s.add_argument("id", type=int)
    s.add_argument("--reason", default="", help="why (shown in the public moderation log)")
    add_actor_option(s, "took it out")
    s.set_defaults(func=cmd_posts_unfeature)


def cmd_posts(ctx: Context, args) -> int:
    feed_id = feed_store.get_feed(ctx.engine, args.feed).id if args.feed else None
    rows = post_store.list_posts(ctx.engine, feed_id=feed_id, limit=args.limit, include_hidden=args.include_hidden)
    rows = [{k: r.get(k) for k in POST_KEYS} for r in rows]
    if args.json:
        print_json(rows)
        return EXIT_OK
    for r in rows:
        print(f"{r['id']:>6}  {when(r['first_seen'])}  feed {r['feed_id']}  {r['title']}\n        {r['url']}")
    if not rows:
        print("no posts yet: run `hustings fetch`")
    return EXIT_OK


def _moderate(ctx: Context, args, action) -> None:
    with refusal_names("post", args.id):
        action(ctx.engine, args.id, actor=actor(args), reason=args.reason)


def cmd_posts_hide(ctx: Context, args) -> int:
    _moderate(ctx, args, moderation.hide_post)
    print(f"post {args.id} hidden: {args.reason}")
    ctx.sync_index(quiet=True)
    return EXIT_OK


def cmd_posts_unhide(ctx: Context, args) -> int:
    _moderate(ctx, args, moderation.unhide_post)
    print(f"post {args.id} shown again")
    ctx.sync_index(quiet=True)
    return EXIT_OK


def cmd_posts_feature(ctx: Context, args) -> int:
    _moderate(ctx, args, moderation.feature_post)
    print(f"post {args.id} is an editor's pick")
    return EXIT_OK


def cmd_posts_unfeature(ctx: Context, args) -> int:
    _moderate(ctx, args, moderation.unfeature_post)
    print(f"post {args.id} is no longer an editor's pick")
    return EXIT_OK
