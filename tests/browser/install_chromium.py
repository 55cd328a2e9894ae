"""Make sure Debian's Chromium is installed, for the browser tests; print what it does.

    python3 tests/browser/install_chromium.py

Finds ``chromium`` on PATH (Debian's package puts it at /usr/bin/chromium). When it is
missing, runs ``apt-get update`` and ``apt-get install -y --no-install-recommends
chromium fonts-dejavu-core`` as root, or through ``sudo -n`` for a user allowed to,
and fails with instructions otherwise. Playwright then drives that binary through
``executable_path``: never ``playwright install``, which downloads a browser build.

Parallel test workers (pytest-xdist) call this at once: an exclusive lock on a file
in the shared temporary directory lets one of them install while the others wait,
then find the installed binary.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PACKAGES = ("chromium", "fonts-dejavu-core")  # a font too, so screenshots show text on a bare image
LOCK = Path(tempfile.gettempdir()) / "hustings-chromium-install.lock"
HOW = ("install Debian's Chromium yourself: `sudo apt-get update && sudo apt-get install -y "
       "--no-install-recommends chromium` (or run `python3 tests/browser/install_chromium.py` as root)")


class InstallError(RuntimeError):
    """Chromium is missing and could not be installed; the message says how to install it."""


def find() -> str | None:
    """The Chromium binary, or None."""
    path = shutil.which("chromium")
    if path:
        return path
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


def _say(message: str) -> None:
    print(f"[install_chromium] {message}", file=sys.stderr, flush=True)


def _privilege() -> list[str]:
    """The prefix that runs apt-get as root: nothing for root, sudo -n for a permitted user."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo"):
        ok = subprocess.run(["sudo", "-n", "true"], stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if ok.returncode == 0:
            return ["sudo", "-n"]
    raise InstallError(f"Chromium is not installed and this user (uid {os.geteuid()}) is neither root nor "
                       f"allowed `sudo -n`, so the browser tests cannot install it: {HOW}")


def _run(cmd: list[str], timeout: float) -> None:
    _say("running: " + " ".join(cmd))
    started = time.monotonic()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise InstallError(f"`{' '.join(cmd)}` did not finish in {timeout:.0f} s; {HOW}") from None
    _say(f"  exit {done.returncode} after {time.monotonic() - started:.1f} s")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise InstallError(f"`{' '.join(cmd)}` failed (exit {done.returncode}):\n{tail}\n{HOW}")


def install() -> str:
    """Install Chromium with apt-get; return its path. Raises InstallError."""
    if not shutil.which("apt-get"):
        raise InstallError(f"Chromium is not installed and there is no apt-get here (not Debian?): {HOW}")
    prefix = _privilege()
    lock_wait = ["-o", "DPkg::Lock::Timeout=300"]  # another apt run on the machine: wait, don't fail
    _run(prefix + ["apt-get", *lock_wait, "update"], timeout=600)
    _run(prefix + ["apt-get", *lock_wait, "install", "-y", "--no-install-recommends", *PACKAGES], timeout=1200)
    path = find()
    if path is None:
        raise InstallError(f"apt-get installed {' '.join(PACKAGES)} but there is still no `chromium` on PATH; {HOW}")
    _say(f"installed {path}")
    return path


def ensure(lock_path: Path = LOCK) -> str:
    """The path of Chromium, installing it first when it is missing (one installer at a time)."""
    path = find()
    if path is not None:
        return path
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as lock:
        try:
            os.chmod(lock_path, 0o666)  # a later run as another user can take the same lock
        except OSError:
            pass
        _say(f"Chromium is missing; waiting for the install lock {lock_path}")
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even if we crash
        try:
            path = find()  # another worker may have installed it while we waited
            if path is not None:
                _say(f"another process installed it: {path}")
                return path
            return install()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def version(path: str) -> str:
    done = subprocess.run([path, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, check=False)
    return (done.stdout or done.stderr).strip()


def main() -> int:
    try:
        path = ensure()
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {version(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
