"""The layout keeps its promises (docs/design.md, "Packages" and "Import rules").

The import graph is read from the code with `ast`, not by importing it: every `import`
and `from ... import` in every module of our packages, including imports inside
functions, relative imports resolved. On it we check that there is no import circle,
that each package imports only the packages the table allows, that `web/` holds no
SQL, that no module is over MAX_LINES without saying why, and that no module is a
grab-bag by name. Each check is a small function tried first on a fake input, so a
check that could never fail would show up here.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("aggregator", "community", "index", "spiders", "web", "hustings")

# What each package may import of ours (besides itself). docs/design.md shows the same table.
MAY_IMPORT = {
    "aggregator": set(),
    "index": {"aggregator"},
    "spiders": {"aggregator"},
    "community": {"aggregator", "index"},
    "web": {"aggregator", "index", "community"},
    "hustings": {"aggregator", "index", "spiders", "community", "web"},
}
# Only the composition root and the server entry point build the app; handlers never.
MAY_IMPORT_WEB_APP = {"hustings", "web.server"}  # a package, or one module

MAX_LINES = 400  # a room read in one sitting; past it the module says why at its top
GRAB_BAG_NAMES = {"utils", "util", "helpers", "helper", "misc", "common"}

# SQLAlchemy names web/ may import: connection types for type hints, nothing that builds a query.
SQLALCHEMY_TYPE_NAMES = {"Engine", "Connection"}
QUERY_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "join", "union", "exists"}
RAW_SQL = re.compile(r"^\s*(SELECT|INSERT\s+INTO|UPDATE|DELETE\s+FROM|CREATE\s+TABLE)\s", re.I)


# ---------------------------------------------------------------- reading the code


def module_files(root: Path = ROOT, packages=PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under our packages."""
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def is_package(name: str, files: dict[str, Path]) -> bool:
    return files[name].name == "__init__.py"


def resolve_from(module: str, level: int, target: str | None, package: bool) -> str:
    """The absolute name of `from <.. target> import ...` written in `module`."""
    if level == 0:
        return target or ""
    base = module.split(".")
    if not package:
        base = base[:-1]  # a plain module's dots count from its package
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_in(module: str, source: str, known: set[str], package: bool = False) -> set[str]:
    """Modules of ours that `module` imports anywhere in `source` (functions included).

    `from a import b` counts as importing `a.b` when that is a module of ours, else `a`.
    """
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(module, node.level, node.module, package)
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:  # `import a.b.func_or_missing` -> nearest module
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def import_graph(files: dict[str, Path]) -> dict[str, set[str]]:
    known = set(files)
    return {name: imports_in(name, path.read_text(), known, is_package(name, files)) for name, path in files.items()}


def package_of(module: str) -> str:
    return module.split(".", 1)[0]


# ---------------------------------------------------------------- the checks


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None. Depth-first, deterministic."""
    state: dict[str, str] = {}  # "open" while on the stack, "done" after
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def package_rule_breaches(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a package the table forbids, and every handler importing web.app."""
    breaches = []
    for module, targets in sorted(graph.items()):
        mine = package_of(module)
        for target in sorted(targets):
            theirs = package_of(target)
            if theirs != mine and theirs not in MAY_IMPORT[mine]:
                breaches.append(f"{module} imports {target}: {mine}/ may not import {theirs}/")
            elif target == "web.app" and not {mine, module} & MAY_IMPORT_WEB_APP:
                breaches.append(f"{module} imports web.app: only hustings and web.server may "
                                "(handlers import web.request)")
    return breaches


def sql_in(module: str, source: str, table_names: set[str]) -> list[str]:
    """Signs of a query built in `module`: SQLAlchemy query builders, tables, raw SQL text."""
    tree = ast.parse(source)
    found = []
    sa_aliases, db_aliases = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy" or alias.name.startswith("sqlalchemy."):
                    found.append(f"{module} line {node.lineno}: import {alias.name}")
                    sa_aliases.add(alias.asname or alias.name.split(".")[0])
                if alias.name == "aggregator.db":
                    db_aliases.add(alias.asname or "aggregator.db")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {alias.name: alias.asname or alias.name for alias in node.names}
            if node.module.split(".")[0] == "sqlalchemy":
                for name in sorted(set(names) - SQLALCHEMY_TYPE_NAMES):
                    found.append(f"{module} line {node.lineno}: from {node.module} import {name}")
            if node.module == "aggregator.db":
                for name in sorted(set(names) & table_names):
                    found.append(f"{module} line {node.lineno}: imports the table {name} from aggregator.db")
            if node.module == "aggregator" and "db" in names:
                db_aliases.add(names["db"])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in sa_aliases and node.attr in QUERY_BUILDERS:
                found.append(f"{module} line {node.lineno}: {node.value.id}.{node.attr}")
            if node.value.id in db_aliases and node.attr in table_names:
                found.append(f"{module} line {node.lineno}: uses the table {node.value.id}.{node.attr}")
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_SQL.match(node.value):
            found.append(f"{module} line {node.lineno}: SQL text {node.value.strip()[:40]!r}")
    return found


def first_paragraph(source: str) -> str:
    doc = ast.get_docstring(ast.parse(source)) or ""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def says_why_long(source: str) -> bool:
    """The docstring's first paragraph has a sentence starting "Long because" and giving a reason."""
    return re.search(r"(?:^|[.!?:;]\s+)Long because\s+\S+(?:\s+\S+){3,}", first_paragraph(source)) is not None


def oversized(module: str, source: str, limit: int = MAX_LINES) -> str | None:
    lines = len(source.splitlines())
    if lines > limit and not says_why_long(source):
        return (f"{module} has {lines} lines (limit {limit}): split it, or start a sentence "
                f"of its docstring's first paragraph with 'Long because' and say why")
    return None


def grab_bag(module: str) -> bool:
    return bool(set(module.split(".")) & GRAB_BAG_NAMES)


# ---------------------------------------------------------------- each check can fail


def test_relative_imports_resolve():
    assert resolve_from("community.polls.store", 1, "model", package=False) == "community.polls.model"
    assert resolve_from("community.polls.store", 2, None, package=False) == "community"
    assert resolve_from("community.polls", 1, "counting", package=True) == "community.polls.counting"
    assert resolve_from("web.app", 0, "aggregator.db", package=False) == "aggregator.db"
    known = {"web", "web.app", "web.request", "aggregator", "aggregator.db", "community", "community.polls"}
    source = (
        "import os\nfrom . import request\nfrom aggregator.db import posts\nfrom community import polls\n"
        "def late():\n    import web.app\n"
    )
    assert imports_in("web.pages", source, known) == {"web.request", "aggregator.db", "community.polls", "web.app"}


def test_the_cycle_finder_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_the_package_rules_catch_each_forbidden_import():
    fake = {
        "aggregator.pipeline": {"community.notices"},
        "index.search": {"aggregator.db", "community.polls"},
        "community.moderation": {"web.request"},
        "web.pages": {"web.request", "community.polls", "hustings.cli"},
        "web.api": {"web.app"},
        "web.server": {"web.app"},
        "spiders.run": {"index.writer"},
        "hustings.cli": {"web.app", "spiders.run"},
    }
    breaches = [line.split(":")[0] for line in package_rule_breaches(fake)]
    assert breaches == [
        "aggregator.pipeline imports community.notices",
        "community.moderation imports web.request",
        "index.search imports community.polls",
        "spiders.run imports index.writer",
        "web.api imports web.app",
        "web.pages imports hustings.cli",
    ]


def test_the_sql_check_sees_queries_and_tables_but_not_type_hints():
    tables = {"posts", "polls"}
    assert sql_in("web.ok", "from sqlalchemy.engine import Engine\nfrom aggregator import db\n"
                  "e = db.make_engine(s)\n", tables) == []
    bad = (
        "import sqlalchemy as sa\nfrom sqlalchemy import select\nfrom aggregator.db import posts\n"
        "from aggregator import db as D\nq = sa.select(1)\nD.polls.c.id\nx = 'SELECT id FROM posts'\n"
    )
    found = "\n".join(sql_in("web.bad", bad, tables))
    for expected in ("import sqlalchemy", "import select", "the table posts", "sa.select", "D.polls", "SQL text"):
        assert expected in found


def test_the_size_check_wants_a_reason():
    body = "x = 1\n" * 401
    assert oversized("m", f'"""Short."""\n{body}') is not None
    assert oversized("m", f'"""Tables.\n\nLong because one schema.\n"""\n{body}') is not None  # not the first paragraph
    assert oversized("m", f'"""Tables. Long because\n"""\n{body}') is not None  # no reason given
    assert oversized("m", f'"""Tables. Long because Alembic compares\none schema in one place."""\n{body}') is None
    assert oversized("m", '"""Short."""\n' + "x = 1\n" * 399) is None


def test_the_name_check_sees_grab_bags():
    assert grab_bag("web.utils") and grab_bag("community.helpers.text") and grab_bag("index.common")
    assert not grab_bag("aggregator.sanitize") and not grab_bag("community.polls.counting")


# ---------------------------------------------------------------- on the real code

FILES = module_files()
GRAPH = import_graph(FILES)


def test_the_graph_was_read():
    assert {"aggregator.db", "web.app", "community.polls", "hustings.cli"} <= set(FILES)
    assert "web.request" in GRAPH["web.pages"]  # a sanity check that edges are found


def test_no_import_circle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_each_package_imports_only_what_the_table_allows():
    breaches = package_rule_breaches(GRAPH)
    assert not breaches, "\n".join(breaches)


def test_nothing_imports_web_but_hustings_and_nothing_imports_hustings():
    for module, targets in GRAPH.items():
        for target in targets:
            if package_of(target) == "web":
                assert package_of(module) in ("web", "hustings"), f"{module} imports {target}"
            if package_of(target) == "hustings":
                assert package_of(module) == "hustings", f"{module} imports {target}"


def test_no_sql_in_web():
    from aggregator import db

    tables = {name for name, value in vars(db).items() if isinstance(value, sa.Table)}
    assert {"posts", "polls", "moderation_log"} <= tables
    found = [hit for name, path in FILES.items() if package_of(name) == "web"
             for hit in sql_in(name, path.read_text(), tables)]
    assert not found, "SQL in web/ (move it to aggregator/ or community/):\n" + "\n".join(found)


@pytest.mark.parametrize("module", sorted(FILES))
def test_module_is_small_or_says_why(module):
    problem = oversized(module, FILES[module].read_text())
    assert problem is None, problem


def test_the_design_docs_table_says_what_this_test_enforces():
    """docs/design.md's package table: its last column, read back, is MAY_IMPORT."""
    table = {}
    for line in (ROOT / "docs" / "design.md").read_text().splitlines():
        row = re.match(r"\| `(\w+)/` \|.*\| ([^|]+) \|$", line)
        if row and row.group(1) in MAY_IMPORT:
            cell = row.group(2)
            table[row.group(1)] = (set(PACKAGES) - {row.group(1)} if "all of the above" in cell
                                   else set(re.findall(r"`(\w+)`", cell)))
    assert table == MAY_IMPORT


def test_no_grab_bag_modules():
    bags = [name for name in FILES if grab_bag(name)]
    assert not bags, f"modules named like a grab-bag (name them for what they do): {bags}"
