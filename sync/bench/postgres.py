"""A real PostgreSQL server in a temporary directory, for the store tests and the failover program.

Uses Debian's ``initdb`` and ``pg_ctl`` (package ``postgresql``; ``.ci/run`` installs it when missing). initdb
refuses to run as root, so as root the server runs as the ``postgres`` user (``runuser``) in a directory that
user owns. The server listens on 127.0.0.1 and a unix socket inside the directory only; local socket
connections are trusted, TCP ones need the password (scram-sha-256), as on a real installation.

    with TemporaryPostgres(tmp) as pg:
        url = pg.create_database("t1")      # postgresql://postgres:<password>@127.0.0.1:<port>/t1
        pg.restart(outage=10.0)             # stop (immediate), wait, start again
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = ["PostgresMissing", "TemporaryPostgres", "find_pg_bin"]


class PostgresMissing(RuntimeError):
    """initdb / pg_ctl are not installed."""


def find_pg_bin() -> Path:
    """The directory of ``initdb`` and ``pg_ctl`` (Debian keeps them in /usr/lib/postgresql/<major>/bin)."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True):
        return Path(found).parent
    which = shutil.which("pg_ctl")
    if which:
        return Path(which).resolve().parent
    raise PostgresMissing("PostgreSQL's initdb and pg_ctl are not installed: `apt-get install -y postgresql`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TemporaryPostgres:
    """initdb + pg_ctl start in ``root`` (None: a new temporary directory, removed again by ``cleanup``; as root
    it must be a directory the ``postgres`` user can reach, which pytest's 0700 tmp_path is not)."""

    def __init__(self, root: Path | None = None, port: int | None = None) -> None:
        self.bin = find_pg_bin()
        self._own = root is None
        self.root = Path(tempfile.mkdtemp(prefix="presence-pg-")) if root is None else Path(root)
        self.data, self.sockets, self.log = self.root / "data", self.root / "sockets", self.root / "server.log"
        self.port = port or _free_port()
        self.password = secrets.token_urlsafe(18)
        self._as_postgres = os.geteuid() == 0
        self.running = False

    # --- running commands as the right user ------------------------------------------------------------------

    def _cmd(self, *args: str) -> list[str]:
        cmd = [str(self.bin / args[0]), *args[1:]]
        return ["runuser", "-u", "postgres", "--", *cmd] if self._as_postgres else cmd

    def _run(self, *args: str, timeout: float = 60.0) -> None:
        done = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}\n{tail}")

    # --- life cycle ------------------------------------------------------------------------------------------

    def start(self) -> TemporaryPostgres:
        if not self.data.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            self.sockets.mkdir(exist_ok=True)
            pwfile = self.root / "pwfile"
            pwfile.write_text(self.password + "\n", encoding="utf-8")
            if self._as_postgres:
                shutil.chown(self.root, "postgres")
                for p in (self.sockets, pwfile):
                    shutil.chown(p, "postgres")
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth-local=trust",
                      "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "-E", "UTF8")
            pwfile.unlink()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o",
                  f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                  "-c max_connections=200", "start")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        """``fast`` (a clean stop) or ``immediate`` (as a crash)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
            self.running = False

    def restart(self, outage: float = 0.0) -> None:
        """Stop at once (as a crash), stay down ``outage`` seconds, start again on the same port."""
        self.stop("immediate")
        time.sleep(outage)
        self.start()

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop("immediate")
        self.cleanup()

    def cleanup(self) -> None:
        """Remove the directory if this object made it (the server must be stopped)."""
        if self._own and not self.running:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- databases -------------------------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL through the unix socket (trusted); returns psql's output."""
        cmd = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", str(self.sockets), "-p",
               str(self.port), "-U", "postgres", "-d", database, "-c", sql]
        done = subprocess.run(["runuser", "-u", "postgres", "--", *cmd] if self._as_postgres else cmd,
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str) -> str:
        """A new, empty database; returns its URL (with the password)."""
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)
