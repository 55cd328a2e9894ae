"""Finished search pages, kept while the index does not change.

Keyed on what was asked (query, filters, sort, page, size) within one index generation
(its directory and Whoosh's generation number): a sync or rebuild makes a new generation
and the cache starts empty. The web's pages and API share the site's Searcher, so they
share this. A page's posts are checked against the database on every hit
(index/search.py), so a post hidden since the index last changed is never served from here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

RESULT_CACHE_PAGES = 512  # pages kept per process (each a few KB): the popular queries, not all of them


class ResultCache:
    def __init__(self, size: int = RESULT_CACHE_PAGES):
        self.size = size
        self._pages: OrderedDict = OrderedDict()
        self._generation = None
        self._lock = threading.Lock()

    def get(self, generation, key):
        """What put stored for key in this generation, or None."""
        with self._lock:
            if generation != self._generation:
                return None
            entry = self._pages.get(key)
            if entry is not None:
                self._pages.move_to_end(key)
            return entry

    def put(self, generation, key, entry) -> None:
        with self._lock:
            if generation != self._generation:
                if self._generation is not None and _older(generation, self._generation):
                    return  # a slow search of a generation already replaced
                self._pages.clear()
                self._generation = generation
            self._pages[key] = entry
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def drop(self, key) -> None:
        with self._lock:
            self._pages.pop(key, None)

    def __len__(self) -> int:
        return len(self._pages)


def _older(generation, current) -> bool:
    """Same index directory and a lower generation number: a page made before the last change."""
    if generation[1] is None or current[1] is None:  # an index not opened yet has no number to compare
        return False
    return generation[0] == current[0] and generation[1] < current[1]
