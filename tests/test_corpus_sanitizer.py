"""Both sanitiser engines against public XSS vector lists (../shared/corpora/sanitizer-vectors).

Inputs (exact duplicates removed, first source kept as the test id):
``all-vectors.jsonl``; the DOMPurify ``expect.json`` payloads; bleach's ``N.test``
inputs; every non-blank line of ``payloadsallthethings/*.txt`` (the two
event-handler *name* lists become ``<img src=x NAME=alert(1)>``); every
``markdown-codeblocks.jsonl`` block; every ``svg/`` file. Each goes through
``sanitizer(Settings(sanitizer=ENGINE))(vector, BASE)`` for nh3 and bleach.

The expected strings in the corpus belong to DOMPurify and to bleach's
*defaults*, not to our policy, so they are not compared. Instead the OUTPUT is
parsed with the stdlib ``html.parser`` and with ``lxml.html`` and must have:

* no element outside ``aggregator.sanitize.TAGS``, no comment/PI/declaration;
* no attribute whose name starts with ``on``, no ``style`` attribute;
* every ``href``/``src``/``cite`` (as the parser decodes it, html-unescaped once
  more to be strict, ASCII whitespace and control characters removed) with
  no scheme or the scheme http, https or mailto;
* ``<iframe>`` only with an https ``src`` on ``settings.iframe_hosts`` and a
  ``sandbox`` attribute;
* no ``<script``/``<style``/``<svg``/``<math``/``<form``/``<object``/``<embed``/
  ``<base``/``<meta`` (and other raw-text or metadata tags) anywhere in the
  serialised text outside quoted attribute values, i.e. nothing that would
  re-parse as such a tag;
* for the event-handler lists: the named attribute is gone.

Idempotence: ``clean(clean(x)) == clean(x)``, compared after sorting each tag's
attributes and turning CR into LF (both are serialisation details). bleach
outputs that are whitespace only may become empty on a second pass; that is
tolerated. Attribute *order* is checked separately, as determinism: the same
input must give byte-identical output every time, because post_store.content_hash
hashes content_html to decide whether a post was updated.

The policy's attribute allow-list (``ATTRIBUTES`` plus what the policy itself
sets: ``rel`` on links, ``loading``/``referrerpolicy`` on images and iframes,
``sandbox`` on iframes) is checked per engine over all vectors in one test.

The two benign pages must keep their text (> 50 % of the visible words) and
their structure (headings, paragraphs, links, lists).
"""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from html.parser import HTMLParser
from urllib.parse import urlsplit

import lxml.html
import pytest
from lxml import etree

from aggregator.sanitize import ATTRIBUTES, IFRAME_SET, IMG_SET, TAGS, sanitizer
from aggregator.settings import Settings

from .conftest import CORPORA, corpus

ROOT = CORPORA / "sanitizer-vectors"
BASE = "https://blog.example.org/post/"
ENGINES = ("nh3", "bleach")
HOSTS = {h.lower() for h in Settings().iframe_hosts}
SET_BY_POLICY = {"a": {"rel"}, "img": set(IMG_SET), "iframe": set(IFRAME_SET)}
URL_ATTRS = {"href", "src", "cite"}
SAFE_SCHEMES = {"http", "https", "mailto"}
EVENT_LISTS = ("port_swigger_xss_cheatsheet_event_handlers.txt", "0xcela_event_handlers.txt")

_JUNK = re.compile(r"[\x00-\x20\x7f]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_XML_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_QUOTED = re.compile(r'="[^"]*"|=\'[^\']*\'')
_RAW_TAG = re.compile(
    r"<\s*/?\s*(script|style|svg|math|form|object|embed|base|meta|link|template|noscript|xmp|plaintext"
    r"|textarea|select|applet|frame|frameset)\b", re.I)
_TAG = re.compile(r'<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*(/?)>')
_ATTR = re.compile(r'\s+[^\s=>/]+(?:="[^"]*")?')


# --- the vectors ------------------------------------------------------------------


def _load_vectors() -> list[tuple[str, str, str]]:
    """(test id, vector, source) for every distinct input."""
    seen: dict[str, tuple[str, str]] = {}

    def add(vector: str, vid: str, source: str) -> None:
        if vector not in seen:
            seen[vector] = (vid, source)

    with open(ROOT / "all-vectors.jsonl", encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            add(item["vector"], f"all-vectors-{item['id']}", item["source"])
    for i, item in enumerate(json.loads((ROOT / "dompurify" / "expect.json").read_text(encoding="utf-8"))):
        add(item["payload"], f"dompurify-{i}", "DOMPurify expect.json")
    for path in sorted((ROOT / "bleach").glob("*.test"), key=lambda p: int(p.stem)):
        add(path.read_text(encoding="utf-8").split("\n--\n", 1)[0].strip(), f"bleach-{path.stem}", path.name)
    for path in sorted((ROOT / "payloadsallthethings").glob("*.txt")):
        text = path.read_bytes().decode("utf-8", "surrogateescape")
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if path.name in EVENT_LISTS:
                add(f"<img src=x {line.strip()}=alert(1)>", f"{path.stem}-{n}", f"{path.name}:{n} (handler name)")
            else:
                add(line, f"{path.stem}-{n}", f"{path.name}:{n}")
    with open(ROOT / "payloadsallthethings" / "markdown-codeblocks.jsonl", encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            item = json.loads(line)
            add(item["block"], f"markdown-{n}", f"{item['source_file']} ({item['section']})")
    for path in sorted((ROOT / "payloadsallthethings" / "svg").iterdir()):
        add(path.read_text(encoding="utf-8", errors="replace"), f"svg-{path.name}", path.name)
    return [(vid, vector, source) for vector, (vid, source) in seen.items()]


VECTORS = _load_vectors() if ROOT.exists() else []


def _vector_params():
    if not VECTORS:
        return [pytest.param(None, None, None, id="corpus-absent")]
    return [pytest.param(vid, vector, source, id=vid) for vid, vector, source in VECTORS]


def _need_corpus():
    corpus("sanitizer-vectors", "all-vectors.jsonl")


def _clean(engine: str):
    return sanitizer(Settings(sanitizer=engine))


# --- the output checks ------------------------------------------------------------


def _url_problem(value: str) -> str | None:
    decoded = _JUNK.sub("", html.unescape(value))
    match = _SCHEME.match(decoded)
    if match and match.group(1).lower() not in SAFE_SCHEMES:
        return f"scheme {match.group(1)!r}"
    return None


def _element_problems(tag: str, attrs) -> list[str]:
    tag = tag.lower()
    if tag not in TAGS:
        return [f"<{tag}> is not an allowed tag"]
    out = []
    values: dict[str, str] = {}
    for name, value in attrs:
        name, value = name.lower(), value or ""
        values[name] = value
        if name.startswith("on"):
            out.append(f"<{tag} {name}=...>: event handler")
        if name == "style":
            out.append(f"<{tag} style=...>")
        if name in URL_ATTRS and (problem := _url_problem(value)):
            out.append(f"<{tag} {name}={value!r}>: {problem}")
    if tag == "iframe":
        src = _JUNK.sub("", html.unescape(values.get("src", "")))
        try:
            parts = urlsplit(src)
            host, scheme = (parts.hostname or "").lower(), parts.scheme.lower()
        except ValueError:
            host, scheme = "", ""
        if scheme != "https" or host not in HOSTS:
            out.append(f"<iframe src={src!r}>: not an https embed from an allowed host")
        if "sandbox" not in values:
            out.append("<iframe> without sandbox")
    return out


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.elements: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))
        self.problems += _element_problems(tag, attrs)

    handle_startendtag = handle_starttag

    def handle_comment(self, data):
        self.problems.append(f"comment {data[:40]!r}")

    def handle_decl(self, decl):
        self.problems.append(f"declaration {decl[:40]!r}")

    def handle_pi(self, data):
        self.problems.append(f"processing instruction {data[:40]!r}")

    def unknown_decl(self, data):
        self.problems.append(f"declaration {data[:40]!r}")


def _lxml_elements(output: str):
    if not output.strip():
        return []
    try:
        root = lxml.html.fragment_fromstring(_XML_BAD.sub("\ufffd", output), create_parent="hustings-check")
    except etree.ParserError:
        return []
    return [el for el in root.iter() if el is not root]


def output_problems(output: str) -> list[str]:
    """Everything executable or outside the policy in sanitiser OUTPUT (empty list: safe)."""
    problems = []
    collector = _Collector()
    collector.feed(output)
    collector.close()
    problems += [f"html.parser: {p}" for p in collector.problems]
    for el in _lxml_elements(output):
        if not isinstance(el.tag, str):
            problems.append(f"lxml: comment or PI {str(el)[:40]!r}")
        else:
            problems += [f"lxml: {p}" for p in _element_problems(el.tag, el.attrib.items())]
    unquoted = _QUOTED.sub('=""', output)
    for match in _RAW_TAG.finditer(unquoted):
        problems.append(f"text re-parses as a tag: {unquoted[max(0, match.start() - 20):match.end() + 20]!r}")
    return problems


def _attributes(output: str) -> list[tuple[str, str]]:
    collector = _Collector()
    collector.feed(output)
    collector.close()
    pairs = [(tag, name.lower()) for tag, attrs in collector.elements for name, _ in attrs]
    for el in _lxml_elements(output):
        if isinstance(el.tag, str):
            pairs += [(el.tag, name.lower()) for name in el.attrib]
    return pairs


def _canonical(output: str) -> str:
    """Attributes sorted within each tag, CR as LF: what idempotence is judged on."""
    def sort_attrs(m):
        return "<" + m.group(1) + "".join(sorted(_ATTR.findall(m.group(2)))) + m.group(3) + ">"
    return _TAG.sub(sort_attrs, output.replace("\r\n", "\n").replace("\r", "\n"))


# --- tests ------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("vid, vector, source", _vector_params())
def test_vector_output_is_safe(engine, vid, vector, source):
    if vid is None:
        _need_corpus()
    out = _clean(engine)(vector, BASE)
    problems = output_problems(out)
    assert not problems, f"{source}\ninput:  {vector[:300]!r}\noutput: {out[:500]!r}\n" + "\n".join(problems[:5])
    if "(handler name)" in source:
        name = vector.split()[2].split("=")[0].lower()
        assert all(attr != name for _, attr in _attributes(out)), f"{name} kept: {out!r}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("vid, vector, source", _vector_params())
def test_vector_cleaning_is_idempotent(engine, vid, vector, source):
    if vid is None:
        _need_corpus()
    clean = _clean(engine)
    try:
        once = clean(vector, BASE)
    except Exception as exc:  # reported by test_vector_output_is_safe
        pytest.skip(f"clean() raises {type(exc).__name__}; see test_vector_output_is_safe")
    twice = clean(once, BASE)
    if engine == "bleach" and not once.strip() and not twice.strip():
        return
    assert _canonical(twice) == _canonical(once), (
        f"{source}\ninput:  {vector[:300]!r}\nonce:   {once[:400]!r}\ntwice:  {twice[:400]!r}")


@pytest.mark.parametrize("engine", ENGINES)
def test_output_is_deterministic(engine):
    """The same input gives the same bytes every time (content_hash depends on it)."""
    _need_corpus()
    clean = _clean(engine)
    differing = []
    for vid, vector, _ in VECTORS:
        try:
            outputs = {clean(vector, BASE) for _ in range(3)}
        except Exception:  # reported by test_vector_output_is_safe
            continue
        if len(outputs) > 1:
            differing.append((vid, sorted(outputs)[:2]))
    assert not differing, f"{len(differing)} vectors give varying output, e.g. {differing[:3]}"


@pytest.mark.parametrize("engine", ENGINES)
def test_only_policy_attributes_survive(engine):
    """No attribute outside ATTRIBUTES (plus what the policy itself sets) in any output."""
    _need_corpus()
    clean = _clean(engine)
    extra: Counter = Counter()
    example: dict = {}
    for vid, vector, _ in VECTORS:
        try:
            out = clean(vector, BASE)
        except Exception:  # reported by test_vector_output_is_safe
            continue
        for tag, name in _attributes(out):
            if tag in TAGS and name not in ATTRIBUTES.get(tag, set()) | SET_BY_POLICY.get(tag, set()):
                extra[(tag, name)] += 1
                example.setdefault((tag, name), vid)
    assert not extra, {f"<{t} {a}>": f"{n} times, e.g. {example[(t, a)]}" for (t, a), n in extra.items()}


# --- benign pages -----------------------------------------------------------------

_HIDDEN = "//script|//style|//noscript|//template|//head|//svg|//math|//textarea|//select|//title"
STRUCTURE = ("h1", "h2", "h3", "h4", "p", "a", "ul", "ol", "li")


def _visible(doc) -> list[str]:
    for el in doc.xpath(_HIDDEN):
        el.drop_tree()
    return doc.text_content().split()


def _benign():
    base = ROOT / "benign-html"
    if not base.exists():
        return [pytest.param(None, id="corpus-absent")]
    return [pytest.param(p.name, id=p.name) for p in sorted(base.iterdir())]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", _benign())
def test_benign_page_keeps_its_text_and_structure(engine, name):
    if name is None:
        _need_corpus()
    page = corpus("sanitizer-vectors", "benign-html", name).read_text(encoding="utf-8")
    out = _clean(engine)(page, BASE)
    assert not output_problems(out)

    words_in = Counter(_visible(lxml.html.document_fromstring(page)))
    words_out = Counter(_visible(lxml.html.fragment_fromstring(out, create_parent="div")))
    kept = sum((words_in & words_out).values()) / sum(words_in.values())
    assert kept > 0.5, f"only {kept:.0%} of the visible words kept"

    tags_in = Counter(el.tag for el in lxml.html.document_fromstring(page).iter() if isinstance(el.tag, str))
    tags_out = Counter(el.tag for el in lxml.html.fragment_fromstring(out, create_parent="div").iter())
    for tag in STRUCTURE:
        assert tags_out[tag] >= 0.9 * tags_in[tag], f"<{tag}>: {tags_in[tag]} in the page, {tags_out[tag]} kept"
    assert tags_out["h1"] + tags_out["h2"] > 0 and tags_out["p"] > 0 and tags_out["a"] > 0 and tags_out["li"] > 0
