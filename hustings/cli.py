"""The `hustings` command: the argparse tree, built from hustings/commands/, and its dispatch.

Each command group is a module in hustings/commands/ that registers its own subcommands;
this module adds the global options, loads the settings and turns expected failures into
one line and an exit code.

Exit codes: 0 success; 1 an expected failure (bad input, a feed that cannot be
fetched, not found), reported in one line without a traceback; 2 a usage error
or a bad setting; 3 the database schema is older than the code (run
`hustings init`); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any, Sequence

from aggregator.errors import HustingsError, SchemaError, SettingsError
from aggregator.settings import Settings, load_settings

from .commands import GROUP_NAMES, group_of, groups
from .commands.context import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SCHEMA, EXIT_USAGE, Context


def build_parser(names: tuple[str, ...] = GROUP_NAMES) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hustings",
        description="Hustings: a blog aggregator and community news site for the movement's grassroots.",
        epilog="Settings come from defaults < --config FILE (or HUSTINGS_CONFIG) < HUSTINGS_<NAME> "
               "environment variables < flags. Exit codes: 0 ok, 1 failed, 2 usage or settings, "
               "3 database needs `hustings init`.",
    )
    _global_options(p, default=None)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in groups(names):
        group.register(sub)
    for leaf in _leaves(p):
        # `hustings demo --data-dir DIR` works as `hustings --data-dir DIR demo` does: people put
        # options after the command. SUPPRESS: given nowhere, the value before the command stands.
        _global_options(leaf.add_argument_group(GLOBAL_GROUP), default=argparse.SUPPRESS)
    return p


GLOBAL_GROUP = "global options (also before the command)"


def _global_options(p, default) -> None:
    p.add_argument("--config", metavar="FILE", default=default, help="TOML settings file")
    p.add_argument("--data-dir", metavar="DIR", default=default, help="where the database and index live")
    p.add_argument("--database-url", metavar="URL", default=default,
                   help="SQLAlchemy URL instead of SQLite in the data dir")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[] if default is None else default,
                   help="set any setting")


def _leaves(parser: argparse.ArgumentParser):
    """Every parser that runs a command (those with subcommands of their own are not)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
        return
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaves(child)
    if not any(a.required for a in subs):  # `hustings posts` runs on its own too
        yield parser


def _settings_from_args(args) -> Settings:
    overrides: dict[str, Any] = {}
    for item in args.set:
        if "=" not in item:
            raise SettingsError(f"--set takes NAME=VALUE, not {item!r}")
        name, value = item.split("=", 1)
        overrides[name.strip()] = value
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    if args.database_url:
        overrides["database_url"] = args.database_url
    return load_settings(config_file=args.config, **overrides)


def _command(argv: Sequence[str]) -> str | None:
    """The command named in argv (the first word that is neither an option nor a global option's value)."""
    takes_value = {"--config", "--data-dir", "--database-url", "--set"}
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in takes_value:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A named command builds only its own group's tree (hustings/commands/__init__.py); the
    # whole tree is for `hustings --help` and for a mistyped command, which argparse refuses
    # with every command listed.
    group = group_of(_command(argv))
    parser = build_parser((group,) if group else GROUP_NAMES)
    args = parser.parse_args(argv)
    try:
        settings = _settings_from_args(args)
    except SettingsError as exc:
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are noise to operators
    # "Running job ...", "executed successfully" for every job run: a third of the console. Its
    # warnings (a missed run, a job still running) still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # Routine, not a fault: a job still running when its next turn comes is skipped by design
    # (max_instances=1, coalesce), and waitress reports every moment its threads are all busy.
    logging.getLogger("apscheduler.scheduler").addFilter(_not_routine)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    ctx = Context(settings)
    try:
        return args.func(ctx, args)
    except SchemaError as exc:
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_SCHEMA
    except HustingsError as exc:  # AggregatorError included: it names the URL at fault
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("hustings: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


def _not_routine(record: logging.LogRecord) -> bool:
    return "maximum number of running instances reached" not in record.getMessage()


def run() -> None:  # console_scripts entry point
    sys.exit(main())
