"""A throwaway PostgreSQL server for benchmarks and the deployment tests: TCP on 127.0.0.1
only, password auth, run as the unprivileged `postgres` account (Postgres refuses root) from a
temporary directory that account owns. Needs root and the server binaries.

    pg = Postgres(find_pg_bin())
    print(pg.url)        # postgresql://grader:PASSWORD@127.0.0.1:PORT/grader
    pg.stop(); pg.start()  # an outage
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


def find_pg_bin() -> Path | None:
    for candidate in ["/usr/local/bin/initdb", shutil.which("initdb"),
                      *sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)]:
        if candidate and Path(candidate).exists():
            return Path(candidate).parent
    return None


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
    """A cluster on 127.0.0.1:PORT with scram-sha-256 auth and a `grader` database. DURABLE keeps
    fsync on (a benchmark measures it); tests turn it off for speed."""

    def __init__(self, bindir: Path, durable: bool = True):
        self.bindir, self.durable = bindir, durable
        self.account = postgres_account()
        self.root = Path(tempfile.mkdtemp(prefix="grader-pg-"))
        os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        self.data = self.root / "data"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        os.chown(pwfile, self.account.pw_uid, self.account.pw_gid)
        self._as_user(["initdb", "-D", str(self.data), "-U", "grader", "--pwfile", str(pwfile),
                       "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8",
                       *([] if durable else ["--no-sync"])])
        pwfile.unlink()
        self.start()
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

    def start(self) -> None:
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                f"-c max_connections=200{'' if self.durable else ' -c fsync=off'}")
        self._as_user(["pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_user(["pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop"], check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
