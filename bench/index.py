"""Index rebuild benchmark: `index.writer.rebuild` against a bare Whoosh bulk load of the same documents.
Long because one run must build the corpus, time ours and the floor in one process each, and report both side by side.

    python3 bench/index.py [--posts 100000] [--seed 1] [--procs 2] [--repeat 1] [--python PY]

1. The corpus: N stored posts (bench/posts_corpus.py), built once per (N, seed) and cached under
   /tmp; every measurement gets its own copy of the database in a fresh data directory.
2. "Ours", in a child process: ``index.writer.rebuild(engine, settings, procs=P)`` timed around the
   call (lock, reading rows from SQLite, html_to_text, Whoosh with procs=P, commit, state file,
   symlink swap). docs/s = documents / that time.
3. "Floor", in another child process, the same run: the same documents, made by
   ``index.writer.document(row)`` from the same rows BEFORE the clock starts, then timed:
   ``create_in`` + ``writer(procs=P, multisegment=P > 1, limitmb=<as rebuild>)`` + ``add_document`` for each
   + ``commit``, with the same schema (``index.schema.make_schema``). That is Whoosh alone.
4. ratio = ours docs/s / floor docs/s. Targets: ratio >= 0.9, ours' peak memory <= 1 GB.
5. The command, for honesty: ``python -m hustings index rebuild --no-progress --json`` as a
   subprocess on another copy; its wall time includes start-up.
6. Sync: on ours' index, 1,000 posts (--sync-posts) are changed in the database (new title and
   an added paragraph, each with a new change number), then ``index.writer.sync`` is timed; then a
   sync with nothing to do. Whoosh 2.7.4 opens a searcher for every ``update_document``, which is
   why this differs so much between Whoosh packages.

Peak memory: the child and its Whoosh worker processes are polled (RSS every 100 ms, PSS every
second); "tree RSS" is the most they held together, "tree PSS" the same with pages shared after
fork counted once (the floor's workers are forked while its parent holds every document, so its
RSS counts those pages up to three times). Each child also reports the other processes' CPU
during its timed region (this VM is shared); --wait-quiet S waits for them to settle first.
--python runs every child with another interpreter (a venv with whoosh 2.7.4, say), which must
have Hustings installed (``pip install -e . --no-deps``). --profile adds a cProfile of ours'
parent process (the Whoosh workers are not in it). Figures are printed, never asserted: the exit
status is 0 unless a run failed outright.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is bench/index.py: the project's `index` package must win over it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))
sys.path.append(str(HERE))

from measuring import BUSY_CORES, code_version, machine_busy_s, spread, wait_quiet  # noqa: E402

CODE = ("index", "aggregator", "hustings")  # the folders whose changes the figures are about

TARGET_RATIO = 0.9
TARGET_MB = 1024


# --- the machine (Linux /proc) ---------------------------------------------------------


def own_cpu_s() -> float:
    """This process's CPU plus that of its children that have been waited for (Whoosh's workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Region:
    """Wall time, own CPU and the other processes' cores over one timed region (in the child)."""

    def __enter__(self) -> "Region":
        self.busy0, self.cpu0, self.t0 = machine_busy_s(), own_cpu_s(), time.perf_counter()
        self.parent0 = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        self.cpu = own_cpu_s() - self.cpu0
        self.parent_cpu = time.process_time() - self.parent0
        busy = machine_busy_s()
        self.others = (max(0.0, (busy - self.busy0 - self.cpu) / self.wall)
                       if busy is not None and self.busy0 is not None else float("nan"))

    def as_dict(self) -> dict:
        return dict(wall=self.wall, cpu=self.cpu, parent_cpu=self.parent_cpu, workers_cpu=self.cpu - self.parent_cpu,
                    others_cores=self.others)


def _status_kb(pid: int, *keys: str) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                k = line.split(":", 1)[0]
                if k in keys:
                    out[k] = int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except (OSError, ValueError):
            pass
    return out


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> dict:
    """Run cmd: wall time, exit code, CPU (its waited-for children included), peak memory, output.

    Memory: tree RSS (child + descendants, polled every 100 ms), tree PSS (every second),
    the child's own VmHWM and the largest VmHWM seen in a descendant.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        peak = dict(rss=0, pss=0, hwm=0, child_hwm=0)
        done = threading.Event()

        watcher_cpu = [0.0]

        def watch() -> None:
            k = 0
            while not done.is_set():
                c0 = time.thread_time()
                pids = _tree(proc.pid)
                rss = 0
                for p in pids:
                    st = _status_kb(p, "VmRSS", "VmHWM")
                    rss += st.get("VmRSS", 0)
                    key = "hwm" if p == proc.pid else "child_hwm"
                    peak[key] = max(peak[key], st.get("VmHWM", 0))
                peak["rss"] = max(peak["rss"], rss)
                if k % 10 == 0:  # smaps_rollup walks the page tables: costly on big processes
                    peak["pss"] = max(peak["pss"], sum(_pss_kb(p) for p in pids))
                k += 1
                watcher_cpu[0] += time.thread_time() - c0
                done.wait(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        done.set()
        watcher.join()
        out.seek(0)
        err.seek(0)
        return dict(wall=wall, rc=os.waitstatus_to_exitcode(status), cpu=usage.ru_utime + usage.ru_stime,
                    rss_mb=peak["rss"] / 1024, pss_mb=peak["pss"] / 1024, hwm_mb=peak["hwm"] / 1024,
                    child_hwm_mb=peak["child_hwm"] / 1024, watcher_cpu=watcher_cpu[0],
                    stdout=out.read().decode("utf-8", "replace"), stderr=err.read().decode("utf-8", "replace"))


def child_env(data_dir: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSTINGS_")}
    if data_dir is not None:
        env["HUSTINGS_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_child(python: str, mode: str, data_dir: Path, out: Path, extra: list[str] = ()) -> dict:
    """Run this file as `--_child mode` under python; its JSON result merged with the memory figures."""
    cmd = [python, str(Path(__file__).resolve()), "--_child", mode, "--data-dir", str(data_dir), "--out", str(out),
           *extra]
    run = run_measured(cmd, child_env())
    if run["rc"] != 0 or not out.exists():
        raise SystemExit(f"the {mode} child exited {run['rc']}:\n{run['stderr'][-4000:]}")
    result = json.loads(out.read_text())
    result.update({k: run[k] for k in ("rss_mb", "pss_mb", "hwm_mb", "child_hwm_mb")}, process_wall=run["wall"],
                  process_cpu=run["cpu"])
    # The poller above is another process to the child: take its CPU out of "others".
    if result.get("wall"):
        result["others_cores"] = max(0.0, result["others_cores"] - run["watcher_cpu"] / run["wall"])
        result["watcher_cores"] = run["watcher_cpu"] / run["wall"]
    return result


def du_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6


def versions(python: str) -> str:
    code = ("import sys, sqlite3, whoosh, sqlalchemy, nh3; from importlib.metadata import version as v, "
            "PackageNotFoundError as E\n"
            "def pkg():\n"
            "    for n in ('whoosh-reloaded', 'Whoosh'):\n"
            "        try:\n"
            "            return n + ' ' + v(n)\n"
            "        except E:\n"
            "            pass\n"
            "print(f\"python {sys.version.split()[0]}, {pkg()} (whoosh {whoosh.versionstring()}), "
            "SQLAlchemy {sqlalchemy.__version__}, nh3 {v('nh3')}, sqlite {sqlite3.sqlite_version}\")")
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=ROOT, env=child_env())
    return (done.stdout.strip() or done.stderr.strip()[-300:]) + f"; {os.cpu_count()} CPUs"


# --- children ----------------------------------------------------------------------------


def _settings(data_dir: Path):
    from aggregator.settings import Settings

    return Settings(data_dir=data_dir)


def _rss_now_mb() -> float:
    return _status_kb(os.getpid(), "VmRSS").get("VmRSS", 0) / 1024


def _floor_child(a) -> dict:
    """Whoosh alone: documents made first (untimed), then create_in + writer + add_document + commit."""
    import whoosh
    from whoosh import index as whoosh_index

    from aggregator import db
    from aggregator.sanitize import html_to_text
    from index.schema import make_schema
    from index.writer import _visible_rows, document

    engine = db.make_engine(_settings(a.data_dir))
    # Streamed as rebuild reads them, so the rows are never all held at once.
    docs, sample, documents_s = [], [], 0.0
    t0 = time.perf_counter()
    for row in _visible_rows(engine):
        t = time.perf_counter()
        docs.append(document(row))
        documents_s += time.perf_counter() - t
        if len(sample) < 2000:
            sample.append(row.content_html)
    read_rows_s = time.perf_counter() - t0 - documents_s
    t3 = time.perf_counter()
    for body in sample:
        html_to_text(body)
    html_ms = (time.perf_counter() - t3) * 1000 / max(1, len(sample))
    text_mb = sum(len(d["body"].encode()) + len(d["title"].encode()) for d in docs) / 1e6
    del sample
    engine.dispose()
    gc.collect()
    limitmb = a.limitmb or _rebuild_limitmb() or 256
    target = Path(a.data_dir) / "floor-index"
    target.mkdir()
    rss_before = _rss_now_mb()
    with Region() as reg:
        ix = whoosh_index.create_in(str(target), make_schema())
        w = ix.writer(procs=a.procs, multisegment=a.procs > 1, limitmb=limitmb)
        for d in docs:
            w.add_document(**d)
        t_add = time.perf_counter()
        w.commit()
    ix = whoosh_index.open_dir(str(target))
    with ix.searcher() as s:
        count = s.doc_count()
    return dict(reg.as_dict(), docs=len(docs), count=count, add_s=t_add - reg.t0, commit_s=reg.wall - (t_add - reg.t0),
                segments=len(ix._segments()), index_mb=du_mb(target), rss_before_mb=rss_before,
                read_rows_s=read_rows_s, documents_s=documents_s, html_to_text_ms=html_ms, text_mb=text_mb,
                whoosh=whoosh.versionstring(), limitmb=limitmb)


def _ours_child(a) -> dict:
    import whoosh

    from aggregator import db
    from index import writer
    from index.schema import current_dir

    settings = _settings(a.data_dir)
    engine = db.make_engine(settings)
    profiler = None
    if a.profile_out:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    with Region() as reg:
        report = writer.rebuild(engine, settings, procs=a.procs)
    if profiler:
        profiler.disable()
        import io
        import pstats

        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).strip_dirs()
        text.write("=== ours' parent process, by own time ===\n")
        stats.sort_stats("tottime").print_stats(a.top)
        text.write("=== by cumulative time ===\n")
        stats.sort_stats("cumulative").print_stats(a.top)
        Path(a.profile_out).write_text(text.getvalue())
    # Not opened here: a searcher on a 100k index takes ~1.2 GB of RSS (Whoosh copies parts of its compound
    # segment files into memory), which would be counted as the rebuild's peak. The parent counts the documents.
    path = current_dir(settings)
    return dict(reg.as_dict(), docs=report.indexed, index_dir=str(path), index_mb=du_mb(path),
                whoosh=whoosh.versionstring(), limitmb=_rebuild_limitmb())


def _sync_child(a) -> dict:
    """Change a.changes posts in the database (untimed), then time sync; then an idle sync."""
    import sqlalchemy as sa
    from whoosh import index as whoosh_index

    from aggregator import db
    from index import writer
    from index.schema import current_dir

    settings = _settings(a.data_dir)
    engine = db.make_engine(settings)
    with db.reading(engine) as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(db.posts)).scalar_one()
    step = max(1, total // a.changes)
    ids = list(range(1, total + 1, step))[: a.changes]
    now = db.utcnow()
    with db.writing(engine) as conn:
        rows = conn.execute(sa.select(db.posts.c.id, db.posts.c.title, db.posts.c.content_html)
                            .where(db.posts.c.id.in_(ids))).all()
        first = db.next_counter(conn, "post_change", len(rows))
        conn.execute(
            sa.update(db.posts).where(db.posts.c.id == sa.bindparam("pid"))
            .values(title=sa.bindparam("new_title"), content_html=sa.bindparam("new_html"),
                    change_seq=sa.bindparam("seq"), updated_at=now),
            [dict(pid=r.id, new_title=r.title + " (updated)",
                  new_html=r.content_html + "<p>Update: corrected the benchmark figures above.</p>", seq=first + k)
             for k, r in enumerate(rows)],
        )
    with Region() as reg:
        report = writer.sync(engine, settings)
    with Region() as idle:
        writer.sync(engine, settings)
    path = current_dir(settings)
    ix = whoosh_index.open_dir(str(path))
    with ix.searcher() as s:
        count = s.doc_count()
    return dict(reg.as_dict(), changed=len(rows), applied=report.applied, indexed=report.indexed, count=count,
                idle_wall=idle.wall, segments=len(ix._segments()))


def _count_child(a) -> dict:
    from whoosh import index as whoosh_index

    ix = whoosh_index.open_dir(str(a.data_dir))
    with ix.searcher() as s:
        return dict(count=s.doc_count(), segments=len(ix._segments()))


def _rebuild_limitmb() -> int | None:
    """The limitmb that index.writer.rebuild passes to Whoosh (read from its source), so the floor uses the same."""
    import inspect
    import re

    from index import writer

    found = re.search(r"limitmb=(\d+)", inspect.getsource(writer._rebuild_locked))
    return int(found.group(1)) if found else None


def child_main(a) -> int:
    result = {"floor": _floor_child, "ours": _ours_child, "sync": _sync_child, "count": _count_child}[a._child](a)
    Path(a.out).write_text(json.dumps(result))
    return 0


# --- the parent --------------------------------------------------------------------------


def copy_db(source: Path, work: Path) -> Path:
    data_dir = Path(tempfile.mkdtemp(prefix="data-", dir=work))
    shutil.copyfile(source, data_dir / "hustings.sqlite3")
    return data_dir


def measure_command(python: str, data_dir: Path) -> dict:
    cmd = [python, "-m", "hustings", "index", "rebuild", "--no-progress", "--json"]
    busy0 = machine_busy_s()
    run = run_measured(cmd, child_env(data_dir))
    busy = machine_busy_s()
    if busy is not None and busy0 is not None:
        run["others_cores"] = max(0.0, (busy - busy0 - run["cpu"] - run["watcher_cpu"]) / run["wall"])
    else:
        run["others_cores"] = float("nan")
    if run["rc"] != 0:
        raise SystemExit(f"`hustings index rebuild` exited {run['rc']}:\n{run['stderr'][-3000:]}")
    report = json.loads(run["stdout"])
    return dict(run, docs=report["indexed"])


def _line(name: str, r: dict) -> str:
    return (f"{name:<8} {r['docs'] / r['wall']:7,.0f} docs/s  ({r['docs']:,} docs in {r['wall']:.1f} s; CPU "
            f"{r['cpu']:.0f} s = parent {r['parent_cpu']:.0f} + workers {r['workers_cpu']:.0f}; tree RSS "
            f"{r['rss_mb']:,.0f} MB, PSS {r['pss_mb']:,.0f} MB; others {r['others_cores']:.2f} cores)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--posts", type=int, default=100000, help="posts in the corpus (default 100,000)")
    p.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    p.add_argument("--procs", type=int, default=min(2, os.cpu_count() or 1),
                   help="Whoosh indexing processes for ours and the floor (default: rebuild's, 2 cores)")
    p.add_argument("--limitmb", type=int, default=128, help="the floor's limitmb (rebuild uses 128)")
    p.add_argument("--repeat", type=int, default=1, help="runs of ours and the floor, interleaved (default 1)")
    p.add_argument("--python", default=sys.executable, help="interpreter for every child (default: this one)")
    p.add_argument("--no-command", action="store_true", help="skip timing `hustings index rebuild`")
    p.add_argument("--sync-posts", type=int, default=1000, help="posts changed before the timed sync (0: skip)")
    p.add_argument("--profile", action="store_true", help="also cProfile ours' parent process (one more run)")
    p.add_argument("--top", type=int, default=25, help="functions shown by --profile")
    p.add_argument("--wait-quiet", type=float, default=0, metavar="S",
                   help="before each measurement wait up to S seconds for other processes to go quiet")
    p.add_argument("--keep", type=Path, help="work in this directory and keep it (indexes, profile)")
    p.add_argument("--_child", choices=("floor", "ours", "sync", "count"), help=argparse.SUPPRESS)
    p.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--profile-out", help=argparse.SUPPRESS)
    p.add_argument("--changes", type=int, default=1000, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._child:
        return child_main(a)

    import posts_corpus

    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="hustings-bench-index-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        source = posts_corpus.cached_db(a.posts, a.seed)
        commit = code_version(*CODE)
        print(f"corpus {source} ({source.stat().st_size / 1e6:,.0f} MB); code {commit}; {versions(a.python)}",
              flush=True)
        extra = ["--procs", str(a.procs), "--limitmb", str(a.limitmb)]
        runs: dict[str, list] = {"floor": [], "ours": [], "command": []}
        ours_dir = None
        for k in range(a.repeat):
            for mode in ("floor", "ours"):
                data_dir = copy_db(source, work)
                wait_quiet(a.wait_quiet)
                r = run_child(a.python, mode, data_dir, work / f"{mode}-{k}.json", extra)
                runs[mode].append(r)
                print(f"run {k + 1}: " + _line(mode, r), flush=True)
                if mode == "floor":
                    print(f"         floor's untimed prep: read {r['docs']:,} rows {r['read_rows_s']:.1f} s, "
                          f"document() {r['documents_s']:.1f} s (html_to_text {r['html_to_text_ms']:.3f} ms/post); "
                          f"{r['rss_before_mb']:,.0f} MB held before the clock", flush=True)
                if mode == "ours":
                    c = run_child(a.python, "count", Path(r["index_dir"]), work / f"count-{k}.json")
                    r.update(count=c["count"], segments=c["segments"])
                if mode == "ours" and k == a.repeat - 1:
                    ours_dir = data_dir
                else:
                    shutil.rmtree(data_dir, ignore_errors=True)
            if not a.no_command:
                data_dir = copy_db(source, work)
                wait_quiet(a.wait_quiet)
                c = measure_command(a.python, data_dir)
                runs["command"].append(c)
                print(f"run {k + 1}: command  {c['docs'] / c['wall']:7,.0f} docs/s  (`hustings index rebuild`: "
                      f"{c['wall']:.1f} s wall, {c['cpu']:.0f} s CPU, tree RSS {c['rss_mb']:,.0f} MB, "
                      f"PSS {c['pss_mb']:,.0f} MB; others {c['others_cores']:.2f} cores)", flush=True)
                shutil.rmtree(data_dir, ignore_errors=True)
        if ours_dir is not None:
            # Leave a copy of the freshly rebuilt data directory for bench/search.py (before sync changes it).
            keep = posts_corpus.index_cache_dir(a.posts, a.seed, runs["ours"][-1]["whoosh"])
            if not keep.exists():
                tmp = keep.with_name(keep.name + f".tmp{os.getpid()}")
                shutil.copytree(ours_dir, tmp, symlinks=True)
                os.replace(tmp, keep)
                print(f"kept the rebuilt data directory for bench/search.py: {keep}", flush=True)
        sync = None
        if a.sync_posts and ours_dir is not None:
            wait_quiet(a.wait_quiet)
            sync = run_child(a.python, "sync", ours_dir, work / "sync.json", ["--changes", str(a.sync_posts)])
            print(f"sync of {sync['changed']:,} changed posts: {sync['wall']:.2f} s ({sync['indexed']:,} updated, "
                  f"index holds {sync['count']:,}, {sync['segments']} segments); idle sync {sync['idle_wall'] * 1000:.0f} ms; "
                  f"others {sync['others_cores']:.2f} cores", flush=True)
        profile_path = None
        if a.profile:
            data_dir = copy_db(source, work)
            profile_path = work / "profile-ours.txt"
            run_child(a.python, "ours", data_dir, work / "ours-profile.json",
                      extra + ["--profile-out", str(profile_path), "--top", str(a.top)])
            shutil.rmtree(data_dir, ignore_errors=True)

        floor, ours, cmd = runs["floor"], runs["ours"], runs["command"]
        ratios = [o["docs"] / o["wall"] / (f["docs"] / f["wall"]) for o, f in zip(ours, floor)]
        print()
        print(f"{a.posts:,} posts (seed {a.seed}), {floor[0]['text_mb']:.0f} MB of title and body text; procs={a.procs}; "
              f"limitmb={ours[0]['limitmb']} per process; {a.repeat} run(s), median (min\u2013max); whoosh {ours[0]['whoosh']}")
        rows = [
            ("ours: rebuild() docs/s", spread([r["docs"] / r["wall"] for r in ours])),
            ("ours: rebuild() wall s", spread([r["wall"] for r in ours], "{:.1f}")),
            ("ours: CPU s parent / Whoosh workers", spread([r["parent_cpu"] for r in ours], "{:.0f}") + " / "
             + spread([r["workers_cpu"] for r in ours], "{:.0f}")),
            ("ours: peak tree RSS / PSS MB", spread([r["rss_mb"] for r in ours]) + " / "
             + spread([r["pss_mb"] for r in ours])),
            ("ours: largest VmHWM parent / worker MB", spread([r["hwm_mb"] for r in ours]) + " / "
             + spread([r["child_hwm_mb"] for r in ours])),
            ("ours: index MB, segments", f"{ours[-1]['index_mb']:,.0f}, {ours[-1]['segments']}"),
            ("floor: Whoosh alone docs/s", spread([r["docs"] / r["wall"] for r in floor])),
            ("floor: wall s (add + commit)", spread([r["wall"] for r in floor], "{:.1f}") +
             f" ({statistics.median(r['add_s'] for r in floor):.1f} + {statistics.median(r['commit_s'] for r in floor):.1f})"),
            ("floor: CPU s parent / Whoosh workers", spread([r["parent_cpu"] for r in floor], "{:.0f}") + " / "
             + spread([r["workers_cpu"] for r in floor], "{:.0f}")),
            ("floor: peak tree RSS / PSS MB (docs held)", spread([r["rss_mb"] for r in floor]) + " / "
             + spread([r["pss_mb"] for r in floor]) + f" ({statistics.median(r['rss_before_mb'] for r in floor):,.0f})"),
            ("floor: prep outside the clock, ms/post", f"{1000 * statistics.median((r['read_rows_s'] + r['documents_s']) / r['docs'] for r in floor):.2f}"
             f" (SQLite rows {1000 * statistics.median(r['read_rows_s'] / r['docs'] for r in floor):.2f}, "
             f"document() {1000 * statistics.median(r['documents_s'] / r['docs'] for r in floor):.2f})"),
            (f"RATIO ours / floor (target >= {TARGET_RATIO})", spread(ratios, "{:.2f}")),
        ]
        if cmd:
            rows += [("command: `hustings index rebuild` docs/s", spread([c["docs"] / c["wall"] for c in cmd])),
                     ("command: wall s, start-up included", spread([c["wall"] for c in cmd], "{:.1f}")),
                     ("command: peak tree RSS / PSS MB", spread([c["rss_mb"] for c in cmd]) + " / "
                      + spread([c["pss_mb"] for c in cmd]))]
        if sync:
            rows += [(f"sync of {sync['changed']:,} changed posts, s", f"{sync['wall']:.2f} "
                      f"({1000 * sync['wall'] / max(1, sync['changed']):.1f} ms/post)"),
                     ("sync with nothing to do, ms", f"{1000 * sync['idle_wall']:.0f}")]
        width = max(len(k) for k, _ in rows)
        for k, v in rows:
            print(f"  {k:<{width}}  {v}")
        peak = max(max(r["rss_mb"] for r in ours), max((c["rss_mb"] for c in cmd), default=0))
        peak_pss = max(max(r["pss_mb"] for r in ours), max((c["pss_mb"] for c in cmd), default=0))
        print(f"  targets: ratio {statistics.median(ratios):.2f} {'>=' if statistics.median(ratios) >= TARGET_RATIO else '<'} "
              f"{TARGET_RATIO} ({'met' if statistics.median(ratios) >= TARGET_RATIO else 'NOT met'}); peak memory of ours "
              f"{peak:,.0f} MB RSS / {peak_pss:,.0f} MB PSS {'<=' if peak_pss <= TARGET_MB else '>'} {TARGET_MB} MB "
              f"({'met' if peak_pss <= TARGET_MB else 'NOT met'})")
        measured = ours + floor + cmd + ([sync] if sync else [])
        busy = [r["others_cores"] for r in measured if r["others_cores"] > BUSY_CORES]
        if busy:
            print(f"  NOTE: other processes used more than {BUSY_CORES} cores during {len(busy)} of {len(measured)} "
                  f"measurements (up to {max(busy):.2f} cores): those figures are low")
        bad = [r for r in ours + floor if r["count"] != r["docs"] or r["docs"] != a.posts]
        if bad:
            print(f"  WARNING: an index holds the wrong number of documents: {[(r['docs'], r['count']) for r in bad]}")
        if code_version(*CODE) != commit:
            print(f"  WARNING: the code changed during the run ({commit} -> {code_version(*CODE)}): rerun")
        if profile_path:
            print(f"\ncProfile of ours' parent process (saved to {profile_path}):\n")
            print(profile_path.read_text())
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
