"""`hustings index`: keep the search index in step with the database (sync, rebuild, check)."""

from __future__ import annotations

import sys

from index import writer

from .context import EXIT_FAILED, EXIT_OK, Context, print_json


def register(sub) -> None:
    index = sub.add_parser("index", help="keep the search index in step with the database")
    isub = index.add_subparsers(dest="index_command", metavar="SUBCOMMAND", required=True)
    s = isub.add_parser("sync", help="apply every post change since the last sync")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index_sync)
    s = isub.add_parser("rebuild", help="build a new index from the database and swap it in")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index_rebuild)
    s = isub.add_parser("check", help="say whether the database and the index agree (exit 1 if not)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_index_check)


def _progress_bar(total: int, enabled: bool, unit: str):
    if not enabled or not total or not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit=unit, file=sys.stderr)
    return bar, bar.update


def cmd_index_sync(ctx: Context, args) -> int:
    report = writer.sync(ctx.engine, ctx.settings)
    return _report_index(args, report)


def cmd_index_rebuild(ctx: Context, args) -> int:
    bar, update = _progress_bar(writer.visible_count(ctx.engine), not args.json and not args.no_progress, "post")
    report = writer.rebuild(ctx.engine, ctx.settings, progress=update)
    if bar:
        bar.close()
    return _report_index(args, report)


def _report_index(args, report) -> int:
    if args.json:
        print_json(report.__dict__)
    else:
        if report.stale_lock_pid:
            print(f"a previous index writer (pid {report.stale_lock_pid}) had died mid-write; its work was redone")
        how = "rebuilt" if report.rebuilt else "synced"
        print(f"search index {how}: {report.applied} changes applied, {report.indexed} posts indexed, "
              f"{report.removed} removed; up to change {report.seq}")
    return EXIT_OK


def cmd_index_check(ctx: Context, args) -> int:
    report = writer.check(ctx.engine, ctx.settings)
    if args.json:
        print_json(report.__dict__)
    elif report.ok:
        print(f"database and index agree: {report.index} posts" +
              (f" ({report.pending} changes waiting for `hustings index sync`)" if report.pending else ""))
    else:
        print(f"database has {report.database} searchable posts, the index {report.index}")
        if report.missing:
            print("  missing from the index: " + " ".join(map(str, report.missing)))
        if report.extra:
            print("  in the index but hidden, deleted or gone: " + " ".join(map(str, report.extra)))
        print("  run `hustings index sync` (or `hustings index rebuild`)")
    return EXIT_OK if report.ok else EXIT_FAILED
