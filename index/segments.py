"""Reading one segment of the index fast: opened without copying it, a term's postings a block
at a time, the field lengths BM25 needs and numeric columns in one read each, and a word's
positions in chosen docs.

The fast paths use whoosh-reloaded's codec (W3LeafMatcher blocks, its length and numeric
columns); a reader without them goes through Whoosh's public API, with the same answers,
only slower. What is read of a segment is kept per segment reader (`cached`), so after a
sync only the new segment is read.
"""

from __future__ import annotations

import sys
import weakref
from array import array
from bisect import bisect_left
from itertools import accumulate

from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.filedb import compound
from whoosh.filedb.structfile import BufferFile
from whoosh.reading import TermNotFound
from whoosh.util.numeric import length_to_byte

_leaves: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # segment reader -> what was read of it


# --- opening a segment without copying it ----------------------------------------------------


class _Window:
    """A read-only file over a buffer (a slice of the segment's mmap), without copying it."""

    def __init__(self, buf):
        self._buf = buf
        self._pos = 0
        self._len = len(buf)

    def read(self, n: int = -1) -> bytes:
        end = self._len if n is None or n < 0 else min(self._pos + n, self._len)
        out = bytes(self._buf[self._pos:end])
        self._pos = end
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def readline(self, limit: int = -1) -> bytes:
        end = self._len if limit is None or limit < 0 else min(self._pos + limit, self._len)
        at = bytes(self._buf[self._pos:end]).find(b"\n")
        return self.read(end - self._pos if at < 0 else at + 1)

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else (self._pos + pos if whence == 1 else self._len + pos)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        self._buf = b""


class _MappedFile(BufferFile):
    """Whoosh's BufferFile without its io.BytesIO(buf): that copies the buffer, so opening a reader
    copied every segment into memory (0.3 s and 600 MB at 100,000 posts, in each thread's searcher)."""

    def __init__(self, buf, name=None, onclose=None):
        BufferFile.__init__(self, b"", name=name, onclose=onclose)
        self._buf = buf
        self.file = _Window(buf)


def map_segments() -> None:
    """Make Whoosh open compound segments through _MappedFile (idempotent; readers call it)."""
    compound.BufferFile = _MappedFile


def cached(leaf, key, make):
    data = _leaves.get(leaf)
    if data is None:
        data = _leaves[leaf] = {}
    if key not in data:
        data[key] = make()
    return data[key]


def postings(leaf, fieldname: str, btext: bytes, fmt) -> tuple[list[int], list[float]]:
    """A term's live postings in one segment: (local doc numbers, weights)."""
    terms = getattr(leaf, "_terms", None)
    ids: list[int] = []
    weights: list[float] = []
    if terms is None:  # not a whoosh-reloaded segment reader: the public, per-posting way
        try:
            m = leaf.postings(fieldname, btext)
        except TermNotFound:
            return ids, weights
        while m.is_active():
            ids.append(m.id())
            weights.append(m.weight())
            m.next()
        return ids, weights
    try:
        m = terms.matcher(fieldname, btext, fmt)
    except (TermNotFound, KeyError):
        return ids, weights
    if type(m) is W3LeafMatcher:
        while m.is_active():  # a block (up to 128 postings) at a time
            ids.extend(_block_ids(m))
            m._read_weights()
            weights.extend(m._weights)
            m._next_block()
    else:  # postings inlined in the term index (rare words)
        while m.is_active():
            ids.append(m.id())
            weights.append(m.weight())
            m.next()
    if leaf.has_deletions():
        deleted = leaf.deleted_docs_set
        kept = [i for i, d in enumerate(ids) if d not in deleted]
        ids, weights = [ids[i] for i in kept], [weights[i] for i in kept]
    return ids, weights


def _block_ids(m) -> tuple[int, ...]:
    """The doc numbers of the matcher's current block (Whoosh's _read_ids, with the deltas summed
    by itertools.accumulate rather than a generator: a fifth of the time)."""
    if m._data is None:
        m._read_data()
    ids = m._data[0]
    return tuple(ids) if m._byteids else tuple(accumulate(ids))


def lengths(leaf, fieldname: str) -> bytes:
    """The segment's length byte of fieldname for each doc (what BM25 normalises by)."""
    n = leaf.doc_count_all()
    try:
        column = leaf._perdoc._cached_reader(_lenfield(fieldname), LENGTHS_COLUMN)
        raw = column._dbfile.get(column._basepos, column._count) if column is not None else b""
    except AttributeError:
        return bytes(length_to_byte(leaf.doc_field_length(d, fieldname) or 0) for d in range(n))
    raw = bytes(raw[:n])
    return raw + bytes(n - len(raw))


def numbers(leaf, fieldname: str) -> array:
    """A numeric column of one segment, read in one go."""
    column = leaf.column_reader(fieldname, translate=False)
    n = leaf.doc_count_all()
    try:
        count, code = column._count, column._typecode
        values = array(code, column._dbfile.get(column._basepos, count * column._fixedlen))
    except AttributeError:
        return array("q", (column[d] for d in range(n)))
    if sys.byteorder == "little":  # Whoosh packs them big-endian
        values.byteswap()
    out = values if code == "q" else array("q", values)
    out.extend([column._default] * (n - count))
    return out


class Positions:
    """A word's positions in one segment, for the docs asked about: each posting block is read at
    most once and found by bisection (Whoosh's skip_to walks a block posting by posting)."""

    def __init__(self, leaf, fieldname: str, text: str):
        fieldobj = leaf.schema[fieldname]
        self._format = fieldobj.format
        self._blocks: dict[int, tuple] = {}  # block number -> (ids, encoded positions)
        self._maxids: list[int] = []
        self._starts: list[int] = []
        self._all: dict[int, bytes] | None = None
        terms = getattr(leaf, "_terms", None)
        try:
            if terms is None:
                raise AttributeError("_terms")
            m = terms.matcher(fieldname, fieldobj.to_bytes(text), self._format)
        except TermNotFound:
            self._all = {}
            return
        except AttributeError:  # not a whoosh-reloaded segment: every posting, the public way
            self._all = _values(leaf.postings(fieldname, text)) if _has_term(leaf, fieldname, text) else {}
            return
        if type(m) is not W3LeafMatcher:  # inlined in the term index: a few postings
            self._all = _values(m)
            return
        self._m = m
        at = m._baseoffset
        while True:  # the block headers only (a few bytes each), not their postings
            self._maxids.append(m._maxid)
            self._starts.append(at)
            if m._lastblock:
                break
            at = m._nextoffset
            m._goto(at)

    @property
    def blocks(self) -> int:
        """About how many posting blocks the word has here (what looking it up can cost)."""
        return len(self._maxids) if self._all is None else len(self._all) // 128

    def of(self, doc: int) -> list[int] | None:
        """The word's positions in doc (a local doc number), or None when doc lacks it."""
        if self._all is not None:
            value = self._all.get(doc)
            return self._format.decode_positions(value) if value is not None else None
        k = bisect_left(self._maxids, doc)
        if k == len(self._maxids):
            return None
        block = self._blocks.get(k)
        if block is None:
            m = self._m
            m._goto(self._starts[k])
            ids = _block_ids(m)
            m._read_values()
            block = self._blocks[k] = (ids, m._values)
        ids, values = block
        i = bisect_left(ids, doc)
        if i < len(ids) and ids[i] == doc:
            return self._format.decode_positions(values[i])
        return None


def _has_term(leaf, fieldname: str, text: str) -> bool:
    try:
        return leaf.doc_frequency(fieldname, text) > 0
    except TermNotFound:
        return False


def _values(m) -> dict[int, bytes]:
    out = {}
    while m.is_active():
        out[m.id()] = m.value()
        m.next()
    return out
