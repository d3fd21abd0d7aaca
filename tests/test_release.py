"""The committed release is a faithful, leak-free regeneration of source/."""

import re

import pytest
from conftest import REPO

from convae import course, notebooks
from convae.course import MARK_SCHEME, assignments

LEAK_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "BEGIN MARK SCHEME",
    "Mark scheme",
    "Model answer",
)


def release_files(root):
    return {
        p.relative_to(root / "release"): p.read_bytes()
        for p in sorted((root / "release").rglob("*"))
        if p.is_file()
    }


def source_secrets(path, kinds=("solution", "hidden", "manual", "mark_scheme")):
    """Lines a student must never see: solution regions, hidden tests, manual answers, mark schemes."""
    secrets = []
    for cell in notebooks.read(path).cells:
        lines = cell.source.splitlines()
        if notebooks.is_manual_answer(cell):
            if "manual" in kinds:
                secrets += lines
            if "mark_scheme" in kinds and MARK_SCHEME in cell.source:
                secrets += cell.source.split(MARK_SCHEME, 1)[1].splitlines()
        regions = {
            "solution": ("BEGIN SOLUTION", "END SOLUTION"),
            "hidden": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
        }
        for kind, (begin, end) in regions.items():
            if kind not in kinds or not notebooks.nbgrader_meta(cell):
                continue
            inside = False
            for line in lines:
                if begin in line:
                    inside = True
                elif end in line:
                    inside = False
                elif inside:
                    secrets.append(line)
    # Short or generic lines (a bare `return x`) can legitimately appear elsewhere, and so can a
    # line that the notebook also shows in the open (a visible check's `except NotImplementedError:`).
    public = "\n".join(public_lines(path))
    return {s.strip() for s in secrets if len(s.strip()) >= 25 and s.strip() not in public}


def public_lines(path) -> set[str]:
    """Lines of a source notebook outside solutions, hidden tests and manually graded answers."""
    public = set()
    for cell in notebooks.read(path).cells:
        if notebooks.is_manual_answer(cell):
            continue
        source = notebooks.visible_part(cell.source)
        inside = False
        for line in source.splitlines():
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            elif not inside:
                public.add(line.strip())
    return public


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
    for marker in LEAK_MARKERS:
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
