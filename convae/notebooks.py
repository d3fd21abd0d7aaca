"""Reading and normalising the course's nbgrader notebooks.

The grading pipeline and the tests look cells up by their nbgrader ``grade_id``; the
normaliser makes a notebook's JSON canonical (stable cell ids, no editor metadata, no trailing
newlines) so that regenerating the release is byte-for-byte reproducible.
"""

from __future__ import annotations

import json
import linecache
import os
from pathlib import Path
from typing import TYPE_CHECKING

from convae import SUBMISSION_DIR

if TYPE_CHECKING:
    import nbformat

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"name": "python"}
# Cell metadata that editors add and nbgrader does not need.
EDITOR_METADATA = ("lines_to_next_cell", "execution", "collapsed", "scrolled", "jupyter")


def read(path: Path | str) -> nbformat.NotebookNode:
    import nbformat  # here, not at the top: a notebook that only calls ``needs`` skips its import

    return nbformat.read(str(path), as_version=4)


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_answer_cell(cell) -> bool:
    """An autograded answer: a code cell students write, not itself graded."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and meta.get("solution", False) and not meta.get("grade", False)


def is_test_cell(cell) -> bool:
    """An autograder test: a locked, graded code cell."""
    meta = nbgrader_meta(cell)
    return cell.cell_type == "code" and meta.get("grade", False) and not meta.get("solution", False)


def is_manual_answer(cell) -> bool:
    meta = nbgrader_meta(cell)
    return meta.get("grade", False) and meta.get("solution", False)


def cells_by_id(nb) -> dict[str, nbformat.NotebookNode]:
    return {grade_id(cell): cell for cell in nb.cells if grade_id(cell)}


def normalise(nb) -> nbformat.NotebookNode:
    """Canonical form: kernelspec set, ids from grade_id, no outputs, no editor metadata."""
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": dict(LANGUAGE_INFO)}
    for index, cell in enumerate(nb.cells):
        for key in EDITOR_METADATA:
            cell.metadata.pop(key, None)
        cell.id = (grade_id(cell) or f"cell-{index}").replace("_", "-")
        cell.source = cell.source.rstrip("\n")
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


def write(nb, path: Path | str) -> None:
    text = json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def normalise_file(path: Path | str) -> bool:
    """Normalise a notebook in place; True when the file changed."""
    path = Path(path)
    before = path.read_text(encoding="utf-8")
    write(normalise(read(path)), path)
    return path.read_text(encoding="utf-8") != before


def sibling_notebook(name: str) -> Path:
    """Another notebook of the same problem set, e.g. part 2 whose classes part 3 re-uses.

    Students keep the notebooks of a problem set in one folder. While grading, the kernel runs in
    the autograded folder, where nbgrader has not written the sibling yet; the grader then points
    ``CONVAE_SUBMISSION_DIR`` at the student's own (repaired) submission, readable in the sandbox.
    """
    for folder in (Path.cwd(), os.environ.get(SUBMISSION_DIR)):
        if folder and (Path(folder) / name).exists():
            return Path(folder) / name
    raise FileNotFoundError(
        f"{name} is not in {Path.cwd()}: keep the notebooks of a problem set in one folder"
    )


def needs(namespace: dict, *names: str, made_by: str) -> None:
    """Stop a cell whose inputs an earlier cell did not make, naming that cell.

    With unfinished answers, a figure cell that uses a model built above would otherwise fail
    with a ``NameError``; it stops instead, as the answer cells do, with ``NotImplementedError``
    and a message saying what to finish.
    """
    missing = [name for name in names if name not in namespace]
    if missing:
        raise NotImplementedError(
            f"this cell needs {', '.join(missing)} from {made_by}, which stopped before making "
            "it: finish the answers that cell uses, run it, then run this cell again"
        )


SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def split_hidden_tests(source: str) -> tuple[list[str], list[str]]:
    """(visible lines, hidden lines) of a test cell, split as nbgrader splits them."""
    visible, hidden, inside = [], [], False
    for line in source.splitlines():
        if HIDDEN_MARKERS[0] in line:
            inside = True
        elif HIDDEN_MARKERS[1] in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return visible, hidden


def visible_part(source: str) -> str:
    """A test cell as students get it: the hidden-test regions removed."""
    return "\n".join(split_hidden_tests(source)[0])


def hidden_part(source: str) -> list[str]:
    """The lines of a test cell's hidden-test regions."""
    return split_hidden_tests(source)[1]


def strip_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if not any(m in line for m in SOLUTION_MARKERS))


def run_cells(path: Path | str, grade_ids, namespace: dict | None = None) -> dict:
    """Execute the cells ``grade_ids`` of the notebook at ``path``, in order, in ``namespace``.

    For a notebook that builds on a sibling's answers (the student's own cells, %magics allowed),
    and for tools that train or benchmark the models a notebook defines, from ``source/``, so that
    the notebook stays the one definition. Returns the namespace (a fresh one unless given).
    """
    from IPython.core.inputtransformer2 import TransformerManager

    path = Path(path)
    cells = cells_by_id(read(path))
    namespace = {"__name__": f"notebook_{path.stem}"} if namespace is None else namespace
    for grade_id in grade_ids:
        if grade_id not in cells:
            raise KeyError(f"{path.name} has no cell {grade_id!r}: did its cells get deleted or renamed?")
        code = TransformerManager().transform_cell(strip_solution_markers(cells[grade_id].source))
        filename = f"<{path.name}:{grade_id}>"
        # Tracebacks through these functions (a training run's, say) then show the cell's lines.
        linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
        try:
            exec(compile(code, filename, "exec"), namespace)
        except Exception as error:
            raise RuntimeError(f"running cell {grade_id!r} of {path} failed: {error!r}") from error
    return namespace
