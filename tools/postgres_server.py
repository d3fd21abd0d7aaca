"""A throwaway PostgreSQL server on loopback, for the tests and benchmarks of a shared gradebook.

Debian's ``postgresql`` provides the binaries (``.ci/run`` installs it); the server listens on
127.0.0.1 only, trusts its one user, and is removed by ``stop``. The tests get it from
``conftest.postgres``; ``tools/bench_cluster.py`` starts its own.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
UNAVAILABLE = (
    None
    if PG_BIN and shutil.which("runuser")
    else "PostgreSQL server binaries not installed (apt-get install postgresql)"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*cmd, **kwargs):
    """initdb and postgres refuse to run as root: run them as the postgres user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, **kwargs)


class PostgresServer:
    def __init__(self):
        # Not under pytest's tmp folder: its 0700 parents would lock the postgres user out.
        self.data = Path(tempfile.mkdtemp(prefix="convae-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.data, "postgres", "postgres")
        self.bin = PG_BIN[-1]
        self.port = free_port()
        as_postgres(f"{self.bin}/initdb", "-D", str(self.data), "-U", "grader", "--auth=trust", "-E", "UTF8")
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data}"
        as_postgres(
            f"{self.bin}/pg_ctl",
            "-D",
            str(self.data),
            "-w",
            "-l",
            str(self.data / "log"),
            "-o",
            options,
            "start",
        )
        for _ in range(50):
            ready = [f"{self.bin}/pg_isready", "-h", "127.0.0.1", "-p", str(self.port)]
            if subprocess.run(ready, capture_output=True).returncode == 0:
                break
            time.sleep(0.2)

    def database(self, name: str) -> str:
        """A new, empty database; returns its SQLAlchemy URL."""
        as_postgres(f"{self.bin}/createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "grader", name)
        return f"postgresql+psycopg://grader@127.0.0.1:{self.port}/{name}"

    def stop(self):
        as_postgres(f"{self.bin}/pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.data, ignore_errors=True)
