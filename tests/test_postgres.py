"""Parallel grading against a real PostgreSQL gradebook (a throwaway server on loopback).

nbgrader accepts any SQLAlchemy URL; several graders or machines share one PostgreSQL
gradebook where SQLite would lock. ``.ci/run`` installs Debian's ``postgresql``; the server
started here listens on 127.0.0.1 only and is stopped at the end.
"""

import csv
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from conftest import REPO, copy_course

from convae import course
from convae.grading import pipeline, sandbox

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
pytestmark = pytest.mark.skipif(
    not PG_BIN or shutil.which("runuser") is None,
    reason="PostgreSQL server binaries not installed (apt-get install postgresql)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_postgres(*cmd, **kwargs):
    """initdb and postgres refuse to run as root: run them as the postgres user when we are root."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def postgres_url():
    # Not under pytest's tmp folder: its 0700 parents would lock the postgres user out.
    data = Path(tempfile.mkdtemp(prefix="convae-pg-"))
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    bin_dir = PG_BIN[-1]
    port = free_port()
    as_postgres(f"{bin_dir}/initdb", "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8")
    as_postgres(
        f"{bin_dir}/pg_ctl",
        "-D",
        str(data),
        "-w",
        "-l",
        str(data / "log"),
        "-o",
        f"-c listen_addresses=127.0.0.1 -p {port} -k {data}",
        "start",
    )
    try:
        for _ in range(50):
            ok = subprocess.run(
                [f"{bin_dir}/pg_isready", "-h", "127.0.0.1", "-p", str(port)], capture_output=True
            )
            if ok.returncode == 0:
                break
            time.sleep(0.2)
        as_postgres(f"{bin_dir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "grader", "gradebook")
        yield f"postgresql+psycopg://grader@127.0.0.1:{port}/gradebook"
    finally:
        as_postgres(f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_parallel_grading_with_a_postgresql_gradebook(tmp_path_factory, postgres_url):
    root = copy_course(tmp_path_factory.mktemp("pgcourse"))
    for path in (root / "source").iterdir():  # one assignment is enough to exercise the database
        if path.name != "ps1":
            shutil.rmtree(path)
    course.generate_release(root)
    course.build_example_class(root)
    settings = pipeline.Settings(root, sandbox=sandbox.probe() is None, db_url=postgres_url)
    results = pipeline.grade_class(settings, jobs=2, progress=False)
    assert all(r.ok for r in results), [r.flags for r in results]
    grades = course.notebook_grades(root, postgres_url)
    with open(REPO / "examples" / "expected_grades.csv") as f:
        expected = {
            (r["student"], r["notebook"]): float(r["score"])
            for r in csv.DictReader(f)
            if r["assignment"] == "ps1"
        }
    got = {(g.student, g.notebook): g.score for g in grades}
    assert got == expected
