"""Test cells are written for the judge: self-contained, reading only what the judge provides.

At grading a test cell runs in the judge, where a name resolves to what the cell itself defines,
to the notebook's ``imports`` cell (which the judge runs too), to builtins, or to a name that an
answer cell defines (reached in the student's kernel). Anything else would be read from nowhere,
or from a locked cell of the student's kernel, which is the student's claim. So every free name
of every test cell, and of its visible part alone (what a student's own kernel runs), is one of
those.
"""

import builtins
import symtable

import pytest
from conftest import REPO

from convae import notebooks

SOURCES = sorted((REPO / "source").glob("*/*.ipynb"))


def bound_names(source: str) -> set[str]:
    table = symtable.symtable(source, "<cell>", "exec")
    return {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}


def free_names(source: str) -> set[str]:
    """Names a cell reads that neither it nor Python's builtins define."""
    top = symtable.symtable(source, "<cell>", "exec")
    read = set()

    def walk(table):
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (table.get_type() == "module" or symbol.is_global()):
                read.add(symbol.get_name())
        for child in table.get_children():
            walk(child)

    walk(top)
    return read - bound_names(source) - set(dir(builtins))


def cases():
    for path in SOURCES:
        nb = notebooks.read(path)
        for cell in nb.cells:
            if notebooks.is_test_cell(cell):
                yield pytest.param(
                    path,
                    notebooks.grade_id(cell),
                    id=f"{path.parent.name}/{path.stem}:{notebooks.grade_id(cell)}",
                )


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_graded_notebook_starts_with_locked_install_and_imports_cells(path):
    nb = notebooks.read(path)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [notebooks.grade_id(c) for c in code[:2]] == ["install", "imports"]
    assert all(notebooks.nbgrader_meta(c).get("locked") for c in code[:2])


@pytest.mark.parametrize(("path", "test_id"), list(cases()))
def test_test_cell_reads_only_what_the_judge_provides(path, test_id):
    nb = notebooks.read(path)
    cells = notebooks.cells_by_id(nb)
    allowed = bound_names(cells["imports"].source)
    allowed |= {notebooks.grade_id(c) for c in nb.cells if notebooks.is_answer_cell(c)}
    source = cells[test_id].source
    for part, text in (("the test cell", source), ("its visible part", notebooks.visible_part(source))):
        unknown = free_names(text) - allowed
        assert not unknown, (
            f"{part} reads {sorted(unknown)}: not defined by the cell, the imports cell or an answer"
        )
