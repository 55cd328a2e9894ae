"""Did you mean: a query's unknown words replaced by the likeliest word the index knows.

The candidates are indexed spellings: the unstemmed words kept beside the stems of the
text field (spelling=True makes spell_text). For each word no post contains, in order:

1. its British or American spelling (mold -> mould, organize -> organise, labor ->
   labour, center -> centre), when posts use it: the same word, not a slip;
2. the words one edit away (a letter dropped, added, changed, or two swapped), those
   keeping the typed first letter before the others (slips rarely hit the first letter);
3. only when there are none, the words two edits away that share the first SPELL_PREFIX
   letters (Whoosh's automaton; a wider search costs tens of milliseconds a word).

Within a step the word most posts use wins. (Whoosh's own corrector ranks every word
within its limit alike and counts frequency in a field the unstemmed word is not in, so
`mold` got `moan`; and it looks at stems, too far from real words to correct.)
"""

from __future__ import annotations

import re

from . import segments
from .query import NAMED, OPERATORS, QUERY_WORD
from .schema import MATCH_FIELD

SPELL_PREFIX = 2  # letters of a misspelt word taken as typed when looking two edits away
MAX_CORRECTED_WORDS = 3  # unknown words looked up per query: a pasted paragraph must stay cheap
LETTERS = "abcdefghijklmnopqrstuvwxyz"
# American and British spellings of one word: each pair is tried both ways, once per word.
VARIANTS = (("or", "our"), ("ize", "ise"), ("yze", "yse"), ("ization", "isation"), ("er", "re"),
            ("og", "ogue"), ("ense", "ence"), ("o", "ou"), ("l", "ll"), ("e", "ae"), ("e", "oe"))


def did_you_mean(searcher, text: str) -> str:
    """The query with each word the index has never seen replaced by its likeliest known word; ""
    when every word is known (or none has a likely replacement)."""
    reader = searcher.reader()
    schema = searcher.schema
    fields = (MATCH_FIELD,) if MATCH_FIELD in schema else ("title", "body")
    analyzer = schema[fields[0]].analyzer
    out, changed, tried = text, False, 0
    # Words given to author:, blog: or tag: are names, not prose: never "corrected".
    scan = NAMED.sub(" ", text)
    for word in dict.fromkeys(m.group(1) for m in QUERY_WORD.finditer(scan)):
        if word in OPERATORS or not word.isalpha():
            continue
        stems = [t.text for t in analyzer(word.lower())]
        if not stems or any(reader.doc_frequency(f, st) for f in fields for st in stems):
            continue  # a stop word, or a word the index knows
        best = _best(reader, fields, word.lower())
        if best:
            out = re.sub(rf"\b{re.escape(word)}\b(?!:)", best, out)
            changed = True
        tried += 1
        if tried >= MAX_CORRECTED_WORDS:
            break
    return out if changed else ""


def _best(reader, fields: tuple[str, ...], word: str) -> str:
    spell_field = reader.schema[fields[0]].spelling_fieldname(fields[0])
    known = _lexicons(reader, spell_field)

    def is_known(w: str) -> bool:
        return any(w in lexicon for lexicon in known)

    def most_used(words) -> str:
        return max(sorted(words), key=lambda w: reader.doc_frequency(spell_field, w)) if words else ""

    found = most_used({v for v in _variants(word) if is_known(v)})
    if found:
        return found
    near = {w for w in _edits(word) if is_known(w)}
    found = most_used({w for w in near if w[0] == word[0]}) or most_used(near)
    if found:
        return found
    far: set[str] = set()
    for leaf, _ in reader.leaf_readers():
        far.update(leaf.terms_within(fields[0], word, 2, prefix=SPELL_PREFIX))
    return most_used(far)


def _lexicons(reader, spell_field: str) -> list[set[str]]:
    """Each segment's spellings, read once per segment (kept while the segment is)."""
    if spell_field not in reader.schema:
        return []
    return [segments.cached(leaf, ("lexicon", spell_field), lambda leaf=leaf: {
        b.decode("utf-8") for b in leaf.lexicon(spell_field)}) for leaf, _ in reader.leaf_readers()]


def _variants(word: str) -> set[str]:
    out = set()
    for us, uk in VARIANTS:
        for a, b in ((us, uk), (uk, us)):
            for m in re.finditer(re.escape(a), word):
                out.add(word[:m.start()] + b + word[m.end():])
    out.discard(word)
    return out


def _edits(word: str) -> set[str]:
    """Every word one edit from word (Norvig's: deletes, transposes, replaces, inserts)."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    out = {a + b[1:] for a, b in splits if b}
    out.update(a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1)
    out.update(a + c + b[1:] for a, b in splits if b for c in LETTERS)
    out.update(a + c + b for a, b in splits for c in LETTERS)
    out.discard(word)
    return out
