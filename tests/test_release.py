"""The committed release is a faithful, leak-free regeneration of source/."""

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from nbgrader.dbutil import _temp_alembic_ini

from convae import course, notebooks
from convae.course import assignments
from convae.grading import commands
from convae.leaks import MARKERS, source_secrets


def release_files(root):
    return {
        p.relative_to(root / "release"): p.read_bytes()
        for p in sorted((root / "release").rglob("*"))
        if p.is_file()
    }


def all_source_notebooks():
    return sorted((REPO / "source").glob("*/*.ipynb"))


def test_committed_release_equals_a_fresh_regeneration(graded_course):
    assert release_files(graded_course) == release_files(REPO), (
        "release/ is stale: run `bash course.sh release` and commit it"
    )


@pytest.mark.parametrize("path", all_source_notebooks(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_release_notebook_leaks_nothing(path):
    released = REPO / "release" / path.parent.name / path.name
    text = released.read_text()
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} found in {released}"
    for secret in source_secrets(path):
        assert secret not in text, f"solution or hidden-test line leaked into the release: {secret!r}"
    for cell in notebooks.read(released).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "release cells must have no output"


def test_copied_files_leak_nothing():
    secrets = set().union(*(source_secrets(p) for p in all_source_notebooks()))
    for path in (REPO / "release").rglob("*"):
        if path.is_file() and path.suffix != ".ipynb":
            data = path.read_bytes()
            assert not re.search(rb"BEGIN (SOLUTION|HIDDEN TESTS|MARK SCHEME)", data), path
            for secret in secrets:
                assert secret.encode() not in data, f"{path} holds solution text"


def test_every_assignment_is_released():
    assert assignments(REPO) == sorted(p.name for p in (REPO / "release").iterdir() if p.is_dir())
    for path in all_source_notebooks():
        assert (REPO / "release" / path.parent.name / path.name).exists()


@pytest.mark.parametrize("path", all_source_notebooks(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_source_notebook_is_normalised(path):
    before = path.read_text()
    assert notebooks.normalise_file(path) is False, "run convae.notebooks.normalise_file on it"
    assert path.read_text() == before


def test_readme_points_table_matches_the_notebooks():
    row = re.compile(r"^\| `(ps\d/\w+)` \| [^|]+ \| ([\d.]+) \| ([\d.]+) \|", re.M)
    in_readme = {name: (float(a), float(m)) for name, a, m in row.findall((REPO / "README.md").read_text())}
    paths = sorted((REPO / "source").glob("*/*.ipynb"))
    in_source = {f"{path.parent.name}/{path.stem}": course.notebook_points(path) for path in paths}
    assert in_readme == in_source


def test_a_new_gradebook_gets_the_schema_revision_that_alembic_reports(tmp_path):
    """``python -m convae.grading.commands`` (how the course runs nbgrader) reads the revision
    in-process instead of running ``alembic heads``: both must give a new gradebook the same one."""
    alembic = Path(sys.executable).parent / "alembic"
    with _temp_alembic_ini(f"sqlite:///{tmp_path / 'unused.db'}") as ini:
        printed = subprocess.run([alembic, "-c", ini, "heads"], capture_output=True, text=True, check=True)
    revision = printed.stdout.split()[0]
    assert commands.alembic_head() == revision
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with commands.gradebook(url):
        pass
    stored = sqlite3.connect(tmp_path / "gradebook.db").execute("SELECT version_num FROM alembic_version")
    assert stored.fetchall() == [(revision,)]
