"""Sections: the blogs' categories as the site's sections, each at /sections/NAME.

A blog's category comes from the OPML it was imported with (its folder) or from the
moderator who approved it. Its section is the top folder of that path ("Local parties /
North" is in "Local parties"), and the section's address is its name in lower case with
every run of other characters made one hyphen ("local-parties"). Blogs without a
category are in no section; they are still on the front page, /new and /blogs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .db import feeds, reading
from .models import PUBLIC_STATUSES
from .opml import SEPARATOR


@dataclass(frozen=True)
class Section:
    slug: str
    name: str
    blog_ids: tuple[int, ...]

    @property
    def path(self) -> str:
        return f"/sections/{self.slug}"


def section_name(category: str | None) -> str:
    """The section a category belongs to: its top folder ("" for none)."""
    return (category or "").split(SEPARATOR)[0].strip()


def slug(name: str) -> str:
    """The section's address: "News and magazines" -> "news-and-magazines"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def sections(engine: Engine) -> list[Section]:
    """Every section that has a blog the site shows, by name."""
    query = sa.select(feeds.c.id, feeds.c.category).where(feeds.c.status.in_(PUBLIC_STATUSES), feeds.c.category != "")
    found: dict[str, tuple[str, list[int]]] = {}
    with reading(engine) as conn:
        for row in conn.execute(query.order_by(feeds.c.id)):
            name = section_name(row.category)
            key = slug(name)
            if key:
                found.setdefault(key, (name, []))[1].append(row.id)
    return sorted((Section(key, name, tuple(ids)) for key, (name, ids) in found.items()),
                  key=lambda s: s.name.lower())


def section(engine: Engine, name: str) -> Section | None:
    """The section at /sections/NAME, or None."""
    return next((s for s in sections(engine) if s.slug == name), None)
