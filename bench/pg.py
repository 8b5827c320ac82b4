"""A throwaway PostgreSQL server for benchmarks, started like tests/deploy/conftest.py does:
TCP on 127.0.0.1 only, password auth, run as the unprivileged `postgres` account (Postgres
refuses root) from a temporary directory that account owns. Needs root and the server binaries.

    pg = Postgres()
    print(pg.url)        # postgresql://grader:PASSWORD@127.0.0.1:PORT/grader
    pg.destroy()
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def find_pg_bin() -> Path:
    for candidate in ["/usr/local/bin/initdb", shutil.which("initdb"),
                      *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)]:
        if candidate and Path(candidate).exists():
            return Path(candidate).parent
    raise SystemExit("no PostgreSQL server binaries (initdb); .ci/install-system-deps.sh test installs them")


def postgres_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "postgres"],
                       check=True)
        return pwd.getpwnam("postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    """A cluster on 127.0.0.1:PORT with scram-sha-256 auth and a `grader` database; fsync stays ON
    (durability is part of what is measured)."""

    def __init__(self):
        if os.geteuid() != 0:
            raise SystemExit("bench/pg.py runs Postgres as the `postgres` account: run as root")
        self.bindir = find_pg_bin()
        self.account = postgres_account()
        self.root = Path(tempfile.mkdtemp(prefix="grader-bench-pg-"))
        os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        self._as_user(["initdb", "-D", str(self.data), "-U", "grader", "--pwfile", str(pwfile),
                       "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8"])
        pwfile.unlink()
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                "-c max_connections=200")
        self._as_user(["pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"])
        try:
            import psycopg
            with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE grader")
        except BaseException:
            self.destroy()
            raise

    def _as_user(self, argv: list[str], check: bool = True):
        return subprocess.run([str(self.bindir / argv[0]), *argv[1:]], check=check, capture_output=True,
                              text=True, cwd=self.root, user=self.account.pw_uid, group=self.account.pw_gid,
                              env={"PATH": "/usr/bin:/bin"})

    @property
    def url(self) -> str:
        return f"postgresql://grader:{self.password}@127.0.0.1:{self.port}/grader"

    def destroy(self) -> None:
        self._as_user(["pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

