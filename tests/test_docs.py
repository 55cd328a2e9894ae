"""The docs tell the truth: every setting, command and dependency is documented."""

import configparser
import dataclasses
import re
from pathlib import Path

from aggregator.settings import Settings
from hustings.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    for field in dataclasses.fields(Settings):
        row = re.search(rf"^\| `{field.name}` \| `HUSTINGS_{field.name.upper()}` \|", README, re.M)
        assert row, f"setting {field.name} is missing from the README's settings table"


def test_every_command_is_in_the_readme_reference():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command_parser in sub.choices.items():
        nested = [a for a in command_parser._actions if getattr(a, "choices", None) and a.dest.endswith("_command")]
        names = [f"{name} {n}" for a in nested for n in a.choices] or [name]
        for full in names:
            assert f"`{full}" in README or f"`{full} " in README, f"command '{full}' is missing from the README"


def test_the_two_commands_and_ci_agree():
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "python3 -m pip install -e '.[test]' && python3 -m pytest"
    assert test_command in README and test_command in ci


def test_every_dependency_is_explained():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    deps_doc = (ROOT / "docs" / "dependencies.md").read_text().lower()
    for line in cfg["options"]["install_requires"].strip().splitlines():
        name = re.split(r"[<>=\[ ]", line.strip())[0].lower()
        assert f"`{name}`" in deps_doc or f"`{name} " in deps_doc or f"`{name}(" in deps_doc, name
