"""Parallel grading against a real PostgreSQL gradebook (a throwaway server on loopback).

nbgrader accepts any SQLAlchemy URL; several graders or machines share one PostgreSQL
gradebook where SQLite would lock (``postgres_server``).
"""

import csv
import shutil

import pytest
from conftest import REPO, copy_course, load_tool, release_course

from convae import course
from convae.grading import pipeline, sandbox

postgres_server = load_tool("postgres_server")
pytestmark = pytest.mark.system("postgresql")


@pytest.fixture(scope="module")
def postgres_url(postgres):
    return postgres.database("gradebook")


def test_parallel_grading_with_a_postgresql_gradebook(tmp_path_factory, postgres_url):
    root = copy_course(tmp_path_factory.mktemp("pgcourse"))
    for path in (root / "source").iterdir():  # one assignment is enough to exercise the database
        if path.name != "ps1":
            shutil.rmtree(path)
    release_course(root)
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
