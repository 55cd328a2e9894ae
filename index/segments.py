"""Reading one segment of the index fast: a term's postings a block at a time, the field
lengths BM25 needs and numeric columns in one read each, and a word's positions in chosen docs.

The fast paths use whoosh-reloaded's codec (W3LeafMatcher blocks, its length and numeric
columns); a reader without them goes through Whoosh's public API, with the same answers,
only slower. What is read of a segment is kept per segment reader (`cached`), so after a
sync only the new segment is read.
"""

from __future__ import annotations

import sys
import weakref
from array import array

from whoosh.codec.whoosh3 import LENGTHS_COLUMN, W3LeafMatcher, _lenfield
from whoosh.reading import TermNotFound
from whoosh.util.numeric import length_to_byte

_leaves: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # segment reader -> what was read of it


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
            m._read_ids()
            m._read_weights()
            ids.extend(m._ids)
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


def positions(leaf, fieldname: str, text, docs: list[int]) -> dict[int, list[int]]:
    """The positions of a word in each of docs (sorted local doc numbers) that holds it."""
    try:
        m = leaf.postings(fieldname, text)
    except TermNotFound:
        return {}
    out = {}
    for d in docs:
        if not m.is_active():
            break
        if m.id() < d:
            m.skip_to(d)
            if not m.is_active():
                break
        if m.id() == d:
            out[d] = m.value_as("positions")
    return out
