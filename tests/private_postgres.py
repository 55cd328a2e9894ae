"""A PostgreSQL cluster of a test's own, in a temporary directory, that the test may stop and
start (the shared server of tests/postgres_server.py must never be restarted under other
tests). Made with the installed server's initdb and pg_ctl, run as the `postgres` user
(PostgreSQL refuses to run as root), listening on 127.0.0.1 only, trust auth (loopback,
throwaway data)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from .conftest import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (tests/postgres_server.py installs it)")
    return found[-1]


class PrivateCluster:
    def __init__(self, base: Path):
        self.dir = base / "pgdata"
        self.sockets = base / "pgsock"
        self.port = free_port()
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_postgres, *args], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-800:]}")

    def create(self) -> "PrivateCluster":
        for path in (self.dir.parent, self.sockets):
            path.mkdir(parents=True, exist_ok=True)
            if self._as_postgres:
                shutil.chown(path, "postgres", "postgres")
        self._run(_bin("initdb"), "-D", str(self.dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        return self

    def start(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.dir), "-w", "-l", str(self.dir.parent / "pg.log"), "-o",
                  f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def stop(self) -> None:
        self._run(_bin("pg_ctl"), "-D", str(self.dir), "-w", "-m", "fast", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except RuntimeError:
            pass
        shutil.rmtree(self.dir.parent, ignore_errors=True)
