"""``convae.notebooks``: the helpers by which one notebook runs another's cells."""

import traceback

import nbformat
import pytest

from convae import notebooks


def test_a_traceback_through_a_sibling_notebooks_cell_shows_its_lines(tmp_path):
    """A student whose part-1 function fails inside part 2's training sees the failing line."""
    nb = nbformat.v4.new_notebook()
    code = "def sample(mu):\n    eps = [0.0] * 2\n    return mu + eps  # the faulty line\n"
    cell = nbformat.v4.new_code_cell(code)
    cell.metadata["nbgrader"] = {"grade_id": "sample"}
    nb.cells.append(cell)
    path = tmp_path / "part1.ipynb"
    notebooks.write(nb, path)
    namespace = notebooks.run_cells(path, ["sample"])
    with pytest.raises(TypeError) as caught:
        namespace["sample"](1.0)
    frame = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert frame.filename == "<part1.ipynb:sample>" and frame.line == "return mu + eps  # the faulty line"
