"""The Whoosh schema, and where the index lives.

The index is derived data: the database is the truth, `hustings index rebuild`
recreates it at any time. It stores only the post id. Titles, URLs, blog names,
dates and the text that highlights are cut from all come from the database when
results are shown (which also means a post hidden a moment ago is never shown,
even before the next sync).

Layout in the data directory::

    index -> index-20261121T230501   (a symlink, swapped atomically by rebuild)
    index-20261121T230501/           (Whoosh files + hustings-sync.json)
    index.lock                       (held by the one writer)
"""

from __future__ import annotations

import os
from pathlib import Path

from whoosh import index as whoosh_index
from whoosh.analysis import StemmingAnalyzer
from whoosh.fields import DATETIME, ID, KEYWORD, TEXT, Schema

from aggregator.settings import Settings

SCHEMA_VERSION = 2  # bump when the schema changes: the next sync then rebuilds
MATCH_FIELD = "text"  # what a word without a field is looked up in (index/matching.py)


def make_schema() -> Schema:
    english = StemmingAnalyzer()  # lower case, English stop words, Porter stemming
    return Schema(
        id=ID(unique=True, stored=True),  # posts.id: the only stored field
        # Title, body and tags in one field without positions: a word is one posting list
        # to read, not three, and a block of it is ~20x cheaper to read than a block of
        # body (no positions to decompress and unpickle). spelling=True keeps the unstemmed
        # words beside the stems (spell_text), for "did you mean".
        text=TEXT(analyzer=english, phrase=False, spelling=True),
        # A title match outranks a body-only match (scored on top of text). title and
        # body keep positions: phrases are checked on them, for the hits a page needs.
        title=TEXT(analyzer=english, field_boost=2.0, phrase=True),
        body=TEXT(analyzer=english, phrase=True),
        author=TEXT(analyzer=StemmingAnalyzer(stoplist=None)),
        blog=TEXT(analyzer=StemmingAnalyzer(stoplist=None)),  # the blog's title, for blog:fabian
        blog_id=ID(sortable=True),  # facet: counts per blog, and the --blog filter
        tags=KEYWORD(lowercase=True, commas=True, scorable=True),
        url=ID(),
        published=DATETIME(sortable=True),
        first_seen=DATETIME(sortable=True),
    )


def index_link(settings: Settings) -> Path:
    return Path(settings.data_dir) / "index"


def current_dir(settings: Settings) -> Path | None:
    """The directory of the live index, or None when there is none yet."""
    link = index_link(settings)
    if not link.exists():
        return None
    path = Path(os.path.realpath(link))
    # Only look for a table of contents: whoosh's exists_in opens it, and a commit can
    # delete the old one at that moment (readers run while the writer commits).
    return path if path.is_dir() and any(path.glob("_MAIN_*.toc")) else None


def open_index(settings: Settings):
    """The live index (read-only use); None when it has not been built yet."""
    from .segments import map_segments

    map_segments()
    path = current_dir(settings)
    return whoosh_index.open_dir(str(path)) if path else None
