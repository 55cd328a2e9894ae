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

from .commands import GROUPS
from .commands.context import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_SCHEMA, EXIT_USAGE, Context


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hustings",
        description="Hustings: a blog aggregator and community news site for the movement's grassroots.",
        epilog="Settings come from defaults < --config FILE (or HUSTINGS_CONFIG) < HUSTINGS_<NAME> "
               "environment variables < flags. Exit codes: 0 ok, 1 failed, 2 usage or settings, "
               "3 database needs `hustings init`.",
    )
    p.add_argument("--config", metavar="FILE", help="TOML settings file")
    p.add_argument("--data-dir", metavar="DIR", help="where the database and index live")
    p.add_argument("--database-url", metavar="URL", help="SQLAlchemy URL instead of SQLite in the data dir")
    p.add_argument("--set", metavar="NAME=VALUE", action="append", default=[], help="set any setting")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return p


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = _settings_from_args(args)
    except SettingsError as exc:
        print(f"hustings: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines are noise to operators
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


def run() -> None:  # console_scripts entry point
    sys.exit(main())
