"""The committed release is a faithful, leak-free regeneration of source/."""

import re

import pytest
from conftest import REPO

from convae import course, notebooks
from convae.course import assignments
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
