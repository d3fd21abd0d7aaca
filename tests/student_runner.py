"""Run one notebook as a student's Restart & Run All does: ``python student_runner.py NB OUT TIMEOUT``.

Copied out of the repository and run by the Python of a student's environment, so it imports
nothing of the course's checkout. Every cell runs, errors or not, in a fresh kernel of that
environment, in the notebook's folder; the executed notebook is written to OUT and a JSON summary
(per cell: its grade id, the names of its errors, how many images it shows, whether it printed
anything; the seconds the notebook took) to standard output.
"""

import json
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def cell_summary(cell) -> dict:
    outputs = cell.get("outputs", [])
    return {
        "grade_id": cell.get("metadata", {}).get("nbgrader", {}).get("grade_id"),
        "errors": [o["ename"] for o in outputs if o.get("output_type") == "error"],
        "evalues": [o["evalue"] for o in outputs if o.get("output_type") == "error"],
        "images": sum("image/png" in o.get("data", {}) for o in outputs),
        "printed": any(o.get("output_type") == "stream" for o in outputs),
        "stderr": "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr"),
    }


def main(notebook: str, out: str, timeout: str) -> None:
    path = Path(notebook).resolve()
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=int(timeout),
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, out)
    cells = [cell_summary(cell) for cell in nb.cells if cell.cell_type == "code"]
    print(json.dumps({"seconds": seconds, "cells": cells}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
