"""The first code cell of every notebook: it installs the course package where it is missing.

On Colab, or in a Jupyter without ``convae``, the cell installs the course wheel from one address;
where ``convae`` is importable (a laptop set up from the bundle, a hub, grading) it does nothing.
The address is a course setting, ``c.CoursePackage.url`` in ``nbgrader_config.py``: the source
notebooks hold a placeholder, and ``CoursePackage`` (a preprocessor that runs first when nbgrader
generates the release) writes the address into each notebook's cell. Changing the address is a
change of the release: regenerate it (``bash course.sh release``).
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from convae import notebooks

GRADE_ID = "install"
# The address line of the cell, as the source notebooks hold it and as the release gets it.
ADDRESS_LINE = re.compile(r'^COURSE_PACKAGE = "[^"\n]*"', re.M)
PLACEHOLDER_HOST_SUFFIX = ".invalid"  # RFC 2606: never resolves, so a forgotten setting fails loudly


class CoursePackage(NbGraderPreprocessor):
    """Write the course wheel's address into the notebook's install cell (release time)."""

    url = Unicode(
        "https://conv-to-vae.invalid/convae-0.1.0-py3-none-any.whl",
        help="where students' notebooks install the course wheel from (Colab, a Jupyter without it)",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        cells = [cell for cell in nb.cells if notebooks.grade_id(cell) == GRADE_ID]
        if len(cells) != 1 or not ADDRESS_LINE.search(cells[0].source):
            raise ValueError(
                f'the notebook needs exactly one {GRADE_ID!r} cell with a COURSE_PACKAGE = "..." line'
            )
        if '"' in self.url or "\n" in self.url:
            raise ValueError(f"CoursePackage.url may not hold a quote or a line break: {self.url!r}")
        line = f'COURSE_PACKAGE = "{self.url}"'
        cells[0].source = ADDRESS_LINE.sub(lambda _: line, cells[0].source)
        return nb, resources


def address(source: str) -> str | None:
    """The address an install cell's source installs from."""
    match = ADDRESS_LINE.search(source)
    return match.group(0).split('"')[1] if match else None


def is_placeholder(url: str) -> bool:
    return (urlparse(url).hostname or "").endswith(PLACEHOLDER_HOST_SUFFIX)
