"""No orphans: child processes that die with the process they work for (issue 16).

A killed parent runs no clean-up. Its children live on: a ProcessPoolExecutor worker waits
for its next task on a pipe whose writing end it holds itself, so it never sees end of file;
a web worker keeps serving, and keeps the port bound. Linux can signal a child when its
parent dies (prctl PR_SET_PDEATHSIG), so each such child asks for that first thing; a child
of a fork server watches the process it works for instead.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_EVERY_S = 1.0  # where a process cannot be waited for (no pidfd), how often to look


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """End this process when `parent_pid`, the process it works for, dies; at once if it is gone.

    `parent_pid` is recorded before the fork. When it is the parent, Linux sends `sig` on its
    death (PR_SET_PDEATHSIG). When it is not (a fork server started this process, and every
    child of a fork server holds the pipe that would tell the fork server to exit), a daemon
    thread waits for `parent_pid` to end and exits this process.
    """
    if os.getppid() == parent_pid and _pdeathsig(sig):
        if os.getppid() != parent_pid:  # it died between the fork and the request: no signal will come
            os._exit(1)
        return
    if not _alive(parent_pid):
        os._exit(1)
    threading.Thread(target=_exit_after, args=(parent_pid,), daemon=True, name=f"watch-{parent_pid}").start()


@contextmanager
def forks_die_with_this_process() -> Iterator[None]:
    """While inside, every process forked from this one dies with it (SIGKILL on its death).

    For children a library forks itself (Whoosh's sub-writers, multiprocessing with fork):
    an os.register_at_fork hook asks for PR_SET_PDEATHSIG in each. Processes started by
    subprocess (fork and exec in C) are not touched.
    """
    global _fork_parent, _fork_hooked
    if _PRCTL is None:
        yield
        return
    with _fork_lock:
        if not _fork_hooked:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hooked = True
        _fork_parent = os.getpid()
    try:
        yield
    finally:
        _fork_parent = None


_fork_lock = threading.Lock()
_fork_hooked = False
_fork_parent: int | None = None  # this process's pid while forks_die_with_this_process is on


def _after_fork_in_child() -> None:
    global _fork_parent
    if _fork_parent is None:
        return
    parent, _fork_parent = _fork_parent, None  # this child's own children are its business
    _pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _load_prctl() -> Callable | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Looked up on import, in the parent: a child forked from a process with threads must not load
# libraries (another thread may have held the loader's lock at the fork).
_PRCTL = _load_prctl()


def _pdeathsig(sig: int) -> bool:
    return _PRCTL is not None and _PRCTL(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def _exit_after(pid: int) -> None:
    """Block until process `pid` ends, then end this one."""
    try:
        fd = os.pidfd_open(pid)  # Linux 5.3+: readable when the process ends, immune to pid reuse
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        while _alive(pid):
            time.sleep(WATCH_EVERY_S)
        os._exit(1)
    select.select([fd], [], [])
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
