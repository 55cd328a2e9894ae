"""Make sure the Nu Html Checker (the W3C's `vnu.jar`) is here, for the HTML tests; print where.

    python3 tests/browser/install_vnu.py

The checker comes from the npm registry's `vnu-jar` package (the jar is inside the package),
installed with npm into a cache directory (`$XDG_CACHE_HOME/hustings`, else `~/.cache/hustings`)
the first time, with `--ignore-scripts`: its install script only fetches a Java runtime, and
we run the machine's own `java` (Debian's, 11 or later). A pinned version, so a new release
cannot change what "valid" means between two runs.

Parallel test workers call this at once: an exclusive lock on a file in the cache directory
lets one of them install while the others wait, then find the jar.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

VERSION = "26.9.27"
HOW = (f"install Java (`apt-get install -y default-jre-headless`) and npm, then run "
       f"`python3 tests/browser/install_vnu.py` (it runs `npm install vnu-jar@{VERSION}` into the cache)")


class InstallError(RuntimeError):
    """The checker is missing and could not be installed; the message says how to install it."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hustings" / f"vnu-jar-{VERSION}"


def jar_path(root: Path | None = None) -> Path:
    return (root or cache_dir()) / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def java() -> str:
    path = shutil.which("java")
    if path is None:
        raise InstallError(f"there is no `java` on PATH to run the Nu Html Checker: {HOW}")
    return path


def _say(message: str) -> None:
    print(f"[install_vnu] {message}", file=sys.stderr, flush=True)


def install(root: Path) -> Path:
    """npm install the pinned vnu-jar into root; return the jar. Raises InstallError."""
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError(f"the Nu Html Checker is not installed and there is no npm: {HOW}")
    root.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(root), f"vnu-jar@{VERSION}", "--ignore-scripts", "--no-audit",
           "--no-fund", "--no-save", "--no-package-lock"]
    _say("running: " + " ".join(cmd))
    started = time.monotonic()
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
                              check=False)
    except subprocess.TimeoutExpired:
        raise InstallError(f"`{' '.join(cmd)}` did not finish in 600 s; {HOW}") from None
    _say(f"  exit {done.returncode} after {time.monotonic() - started:.1f} s")
    jar = jar_path(root)
    if done.returncode != 0 or not jar.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InstallError(f"`{' '.join(cmd)}` failed (exit {done.returncode}), no {jar}:\n{tail}\n{HOW}")
    return jar


def ensure() -> tuple[str, Path]:
    """(java, the checker's jar), installing the jar first when it is missing (one installer at a time)."""
    runtime = java()
    jar = jar_path()
    if jar.exists():
        return runtime, jar
    root = cache_dir()
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"vnu-jar-{VERSION}.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even if we crash
        try:
            if jar.exists():  # another worker installed it while we waited
                return runtime, jar
            return runtime, install(root)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> int:
    try:
        runtime, jar = ensure()
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{jar} (run with {runtime})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
