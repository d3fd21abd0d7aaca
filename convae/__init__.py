"""Infrastructure for the course "From convolutions to VAEs".

Data loaders, a training loop, plotting helpers and the grading pipeline. Nothing in this
package is a solution to an exercise: solutions live only in ``source/``.
"""

import os

__version__ = "0.1.0"

# While grading, the student's own (repaired) submission folder, for notebooks that re-use a
# sibling notebook (see convae.notebooks.sibling_notebook and convae.grading).
SUBMISSION_DIR = "CONVAE_SUBMISSION_DIR"


def grading_mode() -> bool:
    """True while nbgrader executes a notebook (autograde or validate).

    nbgrader sets ``NBGRADER_EXECUTION`` in the kernel's environment; notebooks use this to
    shorten training so that grading never waits on a long run.
    """
    return bool(os.environ.get("NBGRADER_EXECUTION"))
