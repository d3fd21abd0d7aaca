"""Autograder test cells follow nbgrader's rules (DESIGN.md, "Grading rules").

In a student's own kernel (self-check, ``nbgrader validate``) nbgrader scores a test cell 0 when it
writes to stderr, and takes a trailing bare expression's value as the score. At grading the judge
writes the cell's outputs, but the visible part still runs in students' kernels: both rules are
checked statically here, and the graded example class shows clean test cells.
"""

import ast

import pytest
from conftest import REPO

from convae import notebooks

TEST_CELLS = [
    pytest.param(cell, id=f"{path.parent.name}/{path.stem}:{notebooks.grade_id(cell)}")
    for path in sorted((REPO / "source").glob("*/*.ipynb"))
    for cell in notebooks.read(path).cells
    if notebooks.is_test_cell(cell)
]


@pytest.mark.parametrize("cell", TEST_CELLS)
def test_no_trailing_bare_expression(cell):
    body = ast.parse(cell.source).body
    last = body[-1]
    is_print = (
        isinstance(last, ast.Expr)
        and isinstance(last.value, ast.Call)
        and getattr(last.value.func, "id", None) == "print"
    )
    assert not isinstance(last, ast.Expr) or is_print, "a trailing expression's value becomes the score"


@pytest.mark.parametrize("cell", TEST_CELLS)
def test_no_writes_to_stderr(cell):
    source = cell.source
    for forbidden in ("sys.stderr", "warnings.warn(", "file=sys.stderr", "logging."):
        assert forbidden not in source, f"test cells must not write to stderr ({forbidden})"


@pytest.mark.parametrize("cell", TEST_CELLS)
def test_points_and_lock(cell):
    meta = notebooks.nbgrader_meta(cell)
    assert meta["locked"] and meta["points"] > 0


def test_graded_complete_student_cells_are_clean(graded_course):
    """On the complete example, no test cell wrote to stderr or returned a value."""
    for path in sorted((graded_course / "autograded" / "example-complete").glob("*/*.ipynb")):
        for cell in notebooks.read(path).cells:
            if notebooks.is_test_cell(cell):
                kinds = [(o.output_type, o.get("name")) for o in cell.outputs]
                assert ("stream", "stderr") not in kinds, f"{path.name}:{notebooks.grade_id(cell)}"
                assert "execute_result" not in [k for k, _ in kinds], (
                    f"{path.name}:{notebooks.grade_id(cell)}"
                )
                assert "error" not in [k for k, _ in kinds], f"{path.name}:{notebooks.grade_id(cell)}"
