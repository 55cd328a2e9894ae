"""Rendered responses for logged-out readers, so a link from a national paper is survivable.

An entry is served while the site's version (web/listings.site_version: bumped by
every post change in the same transaction) is unchanged and it is younger than
`page_cache_s` (which also bounds how stale the parts without a version, such as
blog health, can be). The version is read at most once a second per process, so a
burst of requests costs one small query a second, not one each.

Each process keeps its own cache (gunicorn workers share nothing); entries are
bounded in number, least recently used dropped first.

A page missing from the cache is rendered once per process at a time (``rendering``):
the other threads asking for it meanwhile wait for that render and serve its result.
Without this, every thread of a threaded server (waitress has 8) rendered the front page
at once when its entry expired, each slowed by the others through the GIL: readers
waited about half a second once a minute (docs/performance.md, Web).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

VERSION_CHECK_S = 1.0


@dataclass(frozen=True)
class Rendered:
    status: int
    body: bytes
    content_type: str
    etag: str
    last_modified: float  # epoch seconds
    made_at: float  # monotonic
    version: int


def etag_for(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class PageCache:
    def __init__(self, version: Callable[[], int], max_age_s: float, max_entries: int = 2000,
                 clock: Callable[[], float] = time.monotonic):
        self._version_of_site = version
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self._lock = threading.Lock()
        self._renders: dict[str, list] = {}  # key -> [lock held while it renders, threads using it]
        self._version = -1
        self._version_read_at = float("-inf")
        # Wall-clock time this process first saw the site's current version: no page rendered
        # since shows a change made after it, so it bounds every page's Last-Modified.
        self.changed_at = 0.0
        self.hits = 0
        self.misses = 0

    def version(self) -> int:
        now = self._clock()
        if now - self._version_read_at >= VERSION_CHECK_S:
            version = self._version_of_site()
            if version != self._version:
                self.changed_at = time.time()
            self._version = version
            self._version_read_at = now
        return self._version

    def get(self, key: str) -> Rendered | None:
        return self._lookup(key, count=True)

    def _lookup(self, key: str, count: bool) -> Rendered | None:
        if self.max_age_s <= 0:
            return None
        version = self.version()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and (entry.version != version or self._clock() - entry.made_at >= self.max_age_s):
                del self._entries[key]
                entry = None
            if entry is None:
                self.misses += count
                return None
            self._entries.move_to_end(key)
            self.hits += count
            return entry

    @contextmanager
    def rendering(self, key: str) -> Iterator[Rendered | None]:
        """Hold while rendering `key` after a miss: one thread renders, the others wait here.

        Yields the entry another thread stored while this one waited (serve it), or None
        (render the page and ``put`` it before leaving).
        """
        if self.max_age_s <= 0:  # nothing is stored, so there is nothing to wait for
            yield None
            return
        with self._lock:
            slot = self._renders.setdefault(key, [threading.Lock(), 0])
            slot[1] += 1
        try:
            with slot[0]:
                yield self._lookup(key, count=False)
        finally:
            with self._lock:
                slot[1] -= 1
                if not slot[1]:
                    del self._renders[key]

    def put(self, key: str, status: int, body: bytes, content_type: str, last_modified: float,
            version: int | None = None) -> Rendered:
        """Store a rendered page. `version` is the site's version read before rendering it
        (the current one if not given): read after, it could mark a page rendered from the
        posts as they were before a change as showing that change."""
        version = self.version() if version is None else version
        entry = Rendered(status, body, content_type, etag_for(body), last_modified, self._clock(), version)
        if self.max_age_s > 0 and status == 200:
            with self._lock:
                self._entries[key] = entry
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        self._version_read_at = float("-inf")
