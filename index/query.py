"""What a reader typed, turned into a Whoosh query that hostile input cannot break,
and the filters given beside it.

Query language: words are ANDed; "quoted phrases"; title:, author:, blog:, tag:
fields; OR and NOT (upper case) with parentheses. Wildcards, fuzzy terms, regular
expressions and ranges are not part of it (each can make one query scan the whole
index): their syntax is read as plain words. Dates and blogs are filters given
separately (since/until/blog), not query syntax.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from whoosh import qparser
from whoosh import query as wq
from whoosh.analysis import STOP_WORDS

from aggregator.errors import HustingsError

from .schema import MATCH_FIELD

MAX_QUERY_CHARS = 500  # longer than any real search; refuse rather than parse a novel
SEARCH_FIELDS = ("title", "body", "tags")  # what a word without a field matches in an index made before `text`
FIELD_ALIASES = {"tags": ["tag"], "blog": ["site"], "author": ["by"]}

# The query's words as a reader sees them (for did-you-mean and snippets): a word not
# followed by a colon, operators aside, and the names given to author:, blog: or tag:.
QUERY_WORD = re.compile(r"\b(\w+)\b(?!:)", re.UNICODE)
OPERATORS = {"AND", "OR", "NOT", "ANDNOT", "ANDMAYBE"}
NAMED = re.compile(r"\b(?:author|by|blog|site|tags?):(?:\"[^\"]*\"|\S+)", re.I)


class QueryError(HustingsError):
    """The query cannot be searched; the message says why, for the person who typed it."""


def _fields(schema) -> list[str]:
    return [MATCH_FIELD] if MATCH_FIELD in schema else list(SEARCH_FIELDS)


def _parser(schema) -> qparser.QueryParser:
    parser = qparser.MultifieldParser(_fields(schema), schema, group=qparser.AndGroup)
    for plugin in (qparser.WildcardPlugin, qparser.RangePlugin, qparser.BoostPlugin):
        parser.remove_plugin_class(plugin)
    parser.add_plugin(qparser.FieldAliasPlugin(FIELD_ALIASES))
    return parser


_WORD = re.compile(r"\w+", re.UNICODE)
QUERY_FIELDS = {"title", "body", "author", "blog", "tags"} | {a for names in FIELD_ALIASES.values() for a in names}
_FIELD_PREFIX = re.compile(r"\b(\w+):")


def parse_query(schema, text: str) -> wq.Query:
    """A Whoosh query for what a reader typed. Raises QueryError for what cannot be searched."""
    # Lone surrogates (from broken UTF-8 decoded leniently) cannot be encoded as index
    # terms: read them as the spaces the cleaning below turns "?" into.
    text = (text or "").encode("utf-8", "replace").decode("utf-8").strip()
    if not text:
        raise QueryError("type something to search for")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is {len(text):,} characters long; a search can be at most {MAX_QUERY_CHARS} characters")
    # Characters that only drive syntax we do not offer are read as spaces, and so is
    # the colon of a field that is not for searching (published:, url:, id: ...).
    cleaned = re.sub(r"[*?~^\[\]{}\\]", " ", text)
    cleaned = _FIELD_PREFIX.sub(lambda m: m.group(0) if m.group(1).lower() in QUERY_FIELDS else m.group(1) + " ",
                                cleaned)
    try:
        q = _parser(schema).parse(cleaned)
    except Exception:  # the parser is forgiving, but a query must never become a 500
        q = None
    if q is None or q is wq.NullQuery:
        words = _WORD.findall(cleaned)
        if not words:
            raise QueryError("the query has no words to search for")
        q = wq.And([qparser.MultifieldParser(_fields(schema), schema).parse(w) for w in words])
    q = _drop_stopword_tags(q)
    if q is wq.NullQuery:
        raise QueryError("the query has only words too common to search for (the, and, of ...)")
    if not _has_positive(q):
        raise QueryError("a search needs at least one word that is not after NOT")
    return q


def _drop_stopword_tags(q: wq.Query) -> wq.Query:
    """tags has no stop list (a tag may be any word), so "the" typed in a query would
    otherwise become a required tags:the and match nothing."""
    def fix(node):
        if isinstance(node, wq.Term) and node.fieldname == "tags" and node.text in STOP_WORDS:
            return wq.NullQuery
        return node
    return q.accept(fix).normalize()


def _has_positive(q: wq.Query) -> bool:
    if isinstance(q, wq.Not):
        return False
    if isinstance(q, wq.AndNot):
        return _has_positive(q.a)
    if q.is_leaf():
        return True
    return any(_has_positive(child) for child in q.children())


def _as_utc(value, end_of_day: bool = False) -> datetime | None:
    if value is None or value == "":
        return None
    date_only = False
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise QueryError(f"{text!r} is not a date (use YYYY-MM-DD)") from None
        date_only = len(text) == 10
    try:
        if end_of_day and date_only:  # --until 2026-03-05 includes that day
            value += timedelta(days=1) - timedelta(microseconds=1)
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the calendar starts in UTC
        raise QueryError(f"{value} is outside the dates this site can search") from None
    return value


def search_filter(blog: int | str | None, since: datetime | str | None,
                  until: datetime | str | None) -> wq.Query | None:
    """The filter for a blog's number and a date range (dates as YYYY-MM-DD or ISO 8601;
    `until` a date includes that day); None when nothing is filtered. Raises QueryError."""
    filters = []
    start, end = _as_utc(since), _as_utc(until, end_of_day=True)
    if start and end and start > end:
        raise QueryError(f"the start date {_day(since)} (since) is after the end date {_day(until)} (until): "
                         "no post can fall between them")
    if start or end:
        filters.append(wq.DateRange("published", start, end))
    if blog not in (None, ""):
        blog_id = str(blog).strip()
        if not blog_id.isdigit():
            raise QueryError(f"blog must be a blog's number, not {blog!r}")
        filters.append(wq.Term("blog_id", blog_id))
    return wq.And(filters) if filters else None


def _day(value) -> str:
    return value.strip() if isinstance(value, str) else value.isoformat()
