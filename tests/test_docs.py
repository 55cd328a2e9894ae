"""The docs tell the truth: every setting, command and dependency is documented."""

import argparse
import configparser
import dataclasses
import re
from pathlib import Path

from aggregator.settings import Settings
from hustings.cli import GLOBAL_GROUP, build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    for field in dataclasses.fields(Settings):
        row = re.search(rf"^\| `{field.name}` \| `HUSTINGS_{field.name.upper()}` \|", README, re.M)
        assert row, f"setting {field.name} is missing from the README's settings table"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every runnable command as (words, its --help line, its parser). A group whose
    subcommand is required (`feeds`) is not runnable alone; `posts` is, and so are its
    subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                sub = action.choices[choice.dest]
                words = (*path, choice.dest)
                if not any(isinstance(a, argparse._SubParsersAction) and a.required for a in sub._actions):
                    yield words, choice.help, sub
                yield from _commands(sub, words)


def _long_options(parser: argparse.ArgumentParser) -> set[str]:
    """A command's own long options (the global ones every command also takes are in the usage line)."""
    globals_ = {id(a) for g in parser._action_groups if g.title == GLOBAL_GROUP for a in g._group_actions}
    return {o for a in parser._actions if id(a) not in globals_
            for o in a.option_strings if o.startswith("--") and o != "--help"}


def _reference() -> tuple[str, list[tuple[str, str]]]:
    """The README's command reference: its usage line and its table's (command, what it does) rows."""
    section = README.split("## Command reference", 1)[1].split("\n## ", 1)[0]
    usage = re.search(r"```text\n(.*?)\n```", section, re.S).group(1)
    rows = []
    for line in section.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 2 and cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[1]))
    return usage, rows


def _command_of(usage: str, commands: dict) -> tuple[str, ...]:
    """The longest command the usage starts with ("posts hide ID ..." is `posts hide`, not `posts`)."""
    words = tuple(usage.split())
    for n in (2, 1):
        if words[:n] in commands:
            return words[:n]
    raise AssertionError(f"the README's command reference lists `{usage}`, which is not a command")


def test_the_readme_command_reference_matches_help():
    parser = build_parser()
    commands = {words: (text, sub) for words, text, sub in _commands(parser)}
    usage, rows = _reference()
    assert rows, "no command table under ## Command reference"
    assert usage.startswith("hustings ") and usage.endswith(" COMMAND")
    assert set(re.findall(r"--[a-z-]+", usage)) == _long_options(parser), "the global options differ from --help"

    listed: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for row_usage, what in rows:
        listed.setdefault(_command_of(row_usage, commands), []).append((row_usage, what))
    for words, (text, sub) in commands.items():
        name = " ".join(words)
        assert words in listed, f"`hustings {name}` is missing from the README's command reference"
        assert any(what.startswith(text) for _, what in listed[words]), (
            f"the README's line for `{name}` should begin with its --help line: {text!r}")
        shown = {o for row_usage, _ in listed[words] for o in re.findall(r"--[a-z][a-z-]*", row_usage)}
        assert shown <= _long_options(sub), f"`{name}`: the README shows options it does not have: {shown - _long_options(sub)}"
        assert _long_options(sub) <= shown, f"`{name}`: options missing from the README: {_long_options(sub) - shown}"


def test_the_two_commands_and_ci_agree():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "python3 -m venv .venv && .venv/bin/python -m pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert test_command in README and test_command in ci


def test_every_dependency_is_explained():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    deps_doc = (ROOT / "docs" / "dependencies.md").read_text().lower()
    for line in cfg["options"]["install_requires"].strip().splitlines():
        name = re.split(r"[<>=\[ ]", line.strip())[0].lower()
        assert f"`{name}`" in deps_doc or f"`{name} " in deps_doc or f"`{name}(" in deps_doc, name
