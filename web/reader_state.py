"""What a cached page shows differently to one reader: the recommend buttons.

Every listing line and the post page carry a recommend button (a plain form, no
JavaScript; a listing's buttons all submit the page's one form, `_rec_form.html`). The page is rendered once and cached for everyone, so the part of the form
that depends on the reader sits between markers, ``<!--rID-->...<!--/r-->`` on a listing
line and ``<!--RID-->...<!--/r-->`` on the post page (short: a listing repeats them 30 times).
On the way out (web/app.py), a returning reader's copy gets, in one query, each post's
live count and whether they recommended it: "Recommended" instead of the button, and the
new count at once, whichever process or cache entry served the page. A new reader (no
cookie yet) has recommended nothing, so their copy is the cached one as it is.
"""

from __future__ import annotations

import hashlib
import re

from markupsafe import Markup, escape

from community import recommendations

from .request import Site, Visitor

POST_TITLE = "post-title"  # the post page's h1: its widget speaks in words
MARK = re.compile(rb"<!--([rR])(\d+)-->.*?<!--/r-->", re.S)


def widget(post_id: int, count: int, done: bool = False, label: str = "") -> Markup:
    """The reader-dependent part of a recommend form; `label` is the id of the post's title:
    POST_TITLE on the post page, "t" + the post's id on a listing line."""
    described = f' aria-describedby="{escape(label)}"' if label else ""
    # Every byte here is repeated on each of a page's 30 lines (HTML <= 30 KB): the marks
    # before the words are the stylesheet's (content: "▲" / "", unspoken).
    if done:
        action = '<span class="rec-b done">Recommended</span>'
    elif label == POST_TITLE:  # the post page: the button of its own form
        action = f'<button class="rec-b"{described}>Recommend</button>'
    else:
        # A listing line: the button submits the page's one form (_rec_form.html: the token and
        # the way back) to this post's address, so 30 lines carry one token, not 30.
        action = (f'<button class="rec-b" form="rf" formaction="/posts/{int(post_id)}/recommend"{described}>'
                  f'Recommend</button>')
    if label == POST_TITLE:  # the post page says it in words
        said = f"{int(count)} reader{'s' if count != 1 else ''} recommend{'s' if count == 1 else ''} this"
    else:  # a listing line: the number, its noun for screen readers
        noun = "recommendation" if count == 1 else "recommendations"
        said = f'{int(count)}<span class="vh"> {noun}</span>'
    mark = "R" if label == POST_TITLE else "r"
    return Markup(f'<!--{mark}{int(post_id)}-->{action} <span class="rec-n">{said}</span><!--/r-->')


def personalise(site: Site, v: Visitor, body: bytes) -> tuple[bytes, str]:
    """This reader's copy of a page, and a short tag of what changed (for its ETag)."""
    if v.new_reader or b"<!--/r-->" not in body:
        return body, ""
    ids = sorted({int(m.group(2)) for m in MARK.finditer(body)})
    state = recommendations.counts_for_reader(site.engine, v.reader, ids)
    if not state:
        return body, ""

    def swap(m: re.Match) -> bytes:
        post_id = int(m.group(2))
        if post_id not in state:
            return m.group(0)
        count, done = state[post_id]
        return widget(post_id, count, done, POST_TITLE if m.group(1) == b"R" else f"t{post_id}").encode()

    mine = MARK.sub(swap, body)
    if mine == body:  # nothing of theirs to show, and the counts are as cached: the shared copy's ETag
        return body, ""
    return mine, hashlib.blake2b(repr(sorted(state.items())).encode(), digest_size=4).hexdigest()
