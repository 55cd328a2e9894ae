"""The index's only writer: sync (apply every post change since the last one) and rebuild.

Kill-safe by construction:

* Every post change has a number (``posts.change_seq``, handed out in commit order).
  Sync applies changes in that order, commits the index, and only then records the
  last number applied (``hustings-sync.json``, written atomically). Killed at any
  moment, the next sync replays from the recorded number; replays are harmless
  because documents are upserted by post id (``update_document``) or deleted by it.
* Rebuild writes a new index directory and swaps the ``index`` symlink to it with one
  atomic rename; a crash leaves the old index live and an unfinished directory that
  the next writer (sync or rebuild) removes once it holds the lock. Whoosh's sub-writer
  processes die with the rebuild, so they neither hold the lock nor write on.
* One writer at a time: an exclusive lock on ``data_dir/index.lock``. It is a kernel
  lock (flock), so a writer that crashed holds nothing; the file still names its pid,
  which is how a crashed writer is noticed and reported before the lock is taken over.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from whoosh import index as whoosh_index

from aggregator import orphans
from aggregator.db import feeds, posts, reading
from aggregator.errors import HustingsError
from aggregator.models import PUBLIC_STATUSES
from aggregator.sanitize import html_to_text
from aggregator.settings import Settings

from .schema import SCHEMA_VERSION, current_dir, make_schema

log = logging.getLogger(__name__)

STATE_FILE = "hustings-sync.json"
BATCH = 2000  # changes per index commit: a commit costs ~0.3 s whatever its size
LOCK_WAIT_S = 60.0
REBUILD_DIR = re.compile(r"index-\d{8}T\d{12}")  # the folders _rebuild_locked makes (not index-legacy)


class IndexBusy(HustingsError):
    """Another process is writing the index."""


@dataclass(frozen=True)
class SyncReport:
    applied: int  # changes read from the database
    indexed: int  # documents added or updated
    removed: int  # documents deleted (hidden, deleted, cross-post copies)
    seq: int  # the last change now in the index
    rebuilt: bool = False
    stale_lock_pid: int | None = None


class IndexLock:
    """Exclusive, kernel-held lock for the one index writer."""

    def __init__(self, settings: Settings, wait_s: float = LOCK_WAIT_S):
        self.path = Path(settings.data_dir) / "index.lock"
        self.wait_s = wait_s
        self.stale_pid: int | None = None
        self._fd: int | None = None

    def __enter__(self) -> "IndexLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    os.close(fd)
                    raise IndexBusy(f"another process (pid {holder or '?'}) is writing the search index "
                                    f"({self.path} is locked); it will apply these changes") from None
                time.sleep(0.1)
        previous = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if previous.isdigit() and int(previous) != os.getpid() and not _alive(int(previous)):
            # The last writer died holding the lock (the kernel let it go); say so.
            self.stale_pid = int(previous)
            log.warning("index writer pid %s died while writing; its lock is cleared and its work redone",
                        previous)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a clean exit leaves no pid behind
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --- state ------------------------------------------------------------------------


def read_state(path: Path) -> dict:
    try:
        return json.loads((path / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_state(path: Path, seq: int) -> None:
    tmp = path / (STATE_FILE + ".tmp")
    with open(tmp, "w") as fh:
        json.dump({"seq": seq, "schema": SCHEMA_VERSION, "at": datetime.now(timezone.utc).isoformat()}, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path / STATE_FILE)


# --- documents --------------------------------------------------------------------

COLUMNS = (
    posts.c.id, posts.c.change_seq, posts.c.title, posts.c.author, posts.c.url, posts.c.tags,
    posts.c.content_html, posts.c.published, posts.c.first_seen, posts.c.hidden, posts.c.deleted,
    posts.c.duplicate_of, posts.c.feed_id, feeds.c.title.label("blog"), feeds.c.status.label("feed_status"),
)
# Queries using VISIBLE join feeds: a post of a pending or rejected blog is not searchable.
VISIBLE = sa.and_(posts.c.hidden == sa.false(), posts.c.deleted == sa.false(), posts.c.duplicate_of.is_(None),
                  feeds.c.status.in_(PUBLIC_STATUSES))


def visible(row) -> bool:
    """In search: not hidden, not deleted, not a copy of a post another blog had first,
    and from a blog the site publishes."""
    return (not row.hidden and not row.deleted and row.duplicate_of is None
            and row.feed_status in PUBLIC_STATUSES)


def _naive(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def document(row) -> dict:
    title, body, tags = row.title or "", html_to_text(row.content_html or ""), json.loads(row.tags or "[]")
    return dict(
        id=str(row.id),
        text=" . ".join([title, body, " ".join(tags)]),  # what a word without a field matches
        title=title,
        body=body,
        author=row.author or "",
        blog=row.blog or "",
        blog_id=str(row.feed_id),
        tags=",".join(tags),
        url=row.url or "",
        published=_naive(row.published),
        first_seen=_naive(row.first_seen),
    )


def _changes(engine: Engine, after: int, limit: int) -> list:
    query = (
        sa.select(*COLUMNS).join(feeds, feeds.c.id == posts.c.feed_id)
        .where(posts.c.change_seq > after).order_by(posts.c.change_seq).limit(limit)
    )
    with reading(engine) as conn:
        return list(conn.execute(query))


def last_change(engine: Engine) -> int:
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.coalesce(sa.func.max(posts.c.change_seq), 0))).scalar_one()


def changes_after(engine: Engine, seq: int) -> int:
    """How many posts changed after change number `seq`: what an index synced to `seq` lacks.
    (Not the difference of numbers: other changes the page caches must see take numbers too.)"""
    with reading(engine) as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(posts).where(posts.c.change_seq > seq)).scalar_one()


def _visible_rows(engine: Engine, batch: int = 1000) -> Iterator:
    """Every post search should hold, in id order, streamed in batches."""
    after = 0
    while True:
        query = (
            sa.select(*COLUMNS).join(feeds, feeds.c.id == posts.c.feed_id)
            .where(VISIBLE, posts.c.id > after).order_by(posts.c.id).limit(batch)
        )
        with reading(engine) as conn:
            rows = list(conn.execute(query))
        if not rows:
            return
        yield from rows
        after = rows[-1].id


def visible_count(engine: Engine) -> int:
    with reading(engine) as conn:
        return conn.execute(
            sa.select(sa.func.count()).select_from(posts.join(feeds, feeds.c.id == posts.c.feed_id)).where(VISIBLE)
        ).scalar_one()


# --- sync and rebuild -------------------------------------------------------------


def sync(engine: Engine, settings: Settings, *, progress: Callable[[int], None] | None = None,
         lock_wait_s: float = LOCK_WAIT_S) -> SyncReport:
    """Apply every post change since the last sync; build the index if there is none.

    Raises:
        IndexBusy: another process held the writer's lock for lock_wait_s.
    """
    with IndexLock(settings, lock_wait_s) as lock:
        remove_unfinished(Path(settings.data_dir))
        path = current_dir(settings)
        state = read_state(path) if path else {}
        if path is None or state.get("schema") != SCHEMA_VERSION:
            report = _rebuild_locked(engine, settings, progress=progress)
            return SyncReport(**{**report.__dict__, "stale_lock_pid": lock.stale_pid})
        ix = whoosh_index.open_dir(str(path))
        seq = int(state.get("seq", 0))
        applied = indexed = removed = 0
        while True:
            rows = _changes(engine, seq, BATCH)
            if not rows:
                break
            writer = ix.writer(limitmb=128)
            try:
                for row in rows:
                    if visible(row):
                        writer.update_document(**document(row))
                        indexed += 1
                    else:
                        writer.delete_by_term("id", str(row.id))
                        removed += 1
            except BaseException:
                writer.cancel()
                raise
            writer.commit()
            seq = rows[-1].change_seq
            _write_state(path, seq)  # only after the commit: a kill before it means a harmless replay
            applied += len(rows)
            if progress:
                progress(len(rows))
        return SyncReport(applied, indexed, removed, seq, stale_lock_pid=lock.stale_pid)


def rebuild(engine: Engine, settings: Settings, *, progress: Callable[[int], None] | None = None,
            procs: int | None = None, lock_wait_s: float = LOCK_WAIT_S) -> SyncReport:
    """Build a new index from the database and make it live atomically."""
    with IndexLock(settings, lock_wait_s) as lock:
        remove_unfinished(Path(settings.data_dir))
        report = _rebuild_locked(engine, settings, progress=progress, procs=procs)
        return SyncReport(**{**report.__dict__, "stale_lock_pid": lock.stale_pid})


def _rebuild_locked(engine: Engine, settings: Settings, *, progress=None, procs: int | None = None) -> SyncReport:
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    new = data_dir / f"index-{stamp}"
    new.mkdir()
    # Changes made while we read are numbered above this; the next sync applies them.
    seq = last_change(engine)
    ix = whoosh_index.create_in(str(new), make_schema())
    procs = procs if procs is not None else min(2, os.cpu_count() or 1)
    # procs > 1: Whoosh indexes in that many processes, one segment each (both cores).
    # limitmb is per process: 2 x 128 MB of posting buffers, to keep a 100k-post rebuild
    # under 1 GB in all (256 MB each peaked at 1.2 GB; docs/performance.md).
    indexed = 0
    # Whoosh forks its sub-writers: killed with this process, they would live on, holding the
    # lock (an inherited descriptor) and writing to `new`.
    with orphans.forks_die_with_this_process():
        writer = ix.writer(procs=procs, multisegment=procs > 1, limitmb=128)
        try:
            for row in _visible_rows(engine):
                writer.add_document(**document(row))
                indexed += 1
                if progress and indexed % 500 == 0:
                    progress(500)
        except BaseException:
            writer.cancel()
            shutil.rmtree(new, ignore_errors=True)
            raise
        writer.commit()
    if progress:
        progress(indexed % 500)
    _write_state(new, seq)
    _swap_in(data_dir, new)
    return SyncReport(applied=indexed, indexed=indexed, removed=0, seq=seq, rebuilt=True)


def _swap_in(data_dir: Path, new: Path) -> None:
    """Point data_dir/index at new in one rename; keep the previous index, drop older ones."""
    link = index_link_of(data_dir)
    previous = Path(os.path.realpath(link)) if link.is_symlink() else None
    if link.exists() and not link.is_symlink():
        # An index from before symlinks were used: move it aside first.
        link.rename(data_dir / "index-legacy")
        previous = data_dir / "index-legacy"
    tmp = data_dir / f".index-link-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(new.name)
    os.replace(tmp, link)
    # Readers that opened the previous index keep it until they refresh; older ones go.
    for old in data_dir.glob("index-*"):
        if old.is_dir() and old not in (new, previous):
            shutil.rmtree(old, ignore_errors=True)


def remove_unfinished(data_dir: Path) -> list[Path]:
    """Delete what killed rebuilds left: index folders never finished, and their temporary links.

    A folder is unfinished when it is not the live index and has no state file (a rebuild
    writes it after its last commit; the live and previous indexes have one). Call with the
    writer's lock held: then no live process is writing any of them.
    """
    link = index_link_of(data_dir)
    live = Path(os.path.realpath(link)) if link.is_symlink() else None
    removed = []
    for path in data_dir.glob("index-*"):
        if (REBUILD_DIR.fullmatch(path.name) and path.is_dir() and not path.is_symlink() and path != live
                and not (path / STATE_FILE).exists()):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    for tmp in data_dir.glob(".index-link-*"):
        if tmp.is_symlink():
            tmp.unlink(missing_ok=True)
    if removed:
        log.warning("removed %d index folder(s) a killed rebuild left unfinished: %s", len(removed),
                    ", ".join(p.name for p in removed))
    return removed


def index_link_of(data_dir: Path) -> Path:
    return data_dir / "index"


@dataclass(frozen=True)
class CheckReport:
    ok: bool
    database: int  # posts search should hold
    index: int  # documents it holds
    missing: tuple[int, ...]  # in the database, not in the index
    extra: tuple[int, ...]  # in the index, not visible in the database
    pending: int  # changes not yet synced


def check(engine: Engine, settings: Settings) -> CheckReport:
    """Do the database and the index agree? Read-only."""
    path = current_dir(settings)
    wanted = {row.id for row in _visible_rows(engine)}
    if path is None:
        return CheckReport(not wanted, len(wanted), 0, tuple(sorted(wanted))[:100], (), last_change(engine))
    ix = whoosh_index.open_dir(str(path))
    with ix.searcher() as searcher:
        have = {int(fields["id"]) for fields in searcher.all_stored_fields()}
    pending = changes_after(engine, int(read_state(path).get("seq", 0)))
    missing = tuple(sorted(wanted - have))
    extra = tuple(sorted(have - wanted))
    return CheckReport(not missing and not extra, len(wanted), len(have), missing[:100], extra[:100], max(pending, 0))
