"""Canonical submissions: the release's cells with the student's answers put back.

Each submission is rebuilt from the release into ``.grading/submitted/``: the release's cells in
the release's order, the student's answer cells put back by ``grade_id`` (a written answer with
the images pasted into it), the student's own unmarked cells kept where they were. This repairs
what breaks nbgrader (deleted or duplicated test cells, changed cell types, edited locked cells)
and turns an invalid or missing notebook into an unanswered one; every repair is returned as a
flag for the report.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import nbformat

from convae import notebooks

STAGING = ".grading"
# Images pasted into a written answer are kept up to the size of a rich output the grader keeps
# (``feedback.TruncateLargeOutputs.max_data``): they are part of the answer a person marks.
MAX_ATTACHMENT_CHARS = 2_000_000


def canonicalise(release_nb, student_nb) -> tuple[nbformat.NotebookNode, list[str]]:
    """The release's cells with the student's answers put back; returns (notebook, repairs)."""
    release_cells = notebooks.cells_by_id(release_nb)
    answers, repairs, scratch_after = {}, [], {}
    last_known = None
    for cell in student_nb.cells:
        cell_id = notebooks.grade_id(cell)
        if cell_id in release_cells:
            last_known = cell_id
            expected = release_cells[cell_id]
            if not notebooks.nbgrader_meta(expected).get("solution"):
                if cell.source != expected.source or cell.cell_type != expected.cell_type:
                    repairs.append(f"locked cell {cell_id} was edited: restored")
                continue
            if cell_id in answers:
                repairs.append(f"duplicate of {cell_id} dropped")
            elif cell.cell_type != expected.cell_type:
                repairs.append(f"{cell_id} changed to {cell.cell_type}: treated as unanswered")
            else:
                answers[cell_id] = cell
                repairs += oversized_attachments(cell, cell_id)
        elif cell_id is None and not notebooks.nbgrader_meta(cell):
            scratch_after.setdefault(last_known, []).append(cell)  # the student's own cell
        else:
            repairs.append(f"unknown graded cell {cell_id} dropped")
    handed_in = {notebooks.grade_id(c) for c in student_nb.cells}
    repairs += [f"deleted cell {cell_id} restored" for cell_id in release_cells if cell_id not in handed_in]

    out = copy.deepcopy(release_nb)
    cells = list(scratch_after.get(None, []))
    for cell in out.cells:
        cell_id = notebooks.grade_id(cell)
        if cell_id in answers:
            cell.source = answers[cell_id].source
            if answers[cell_id].get("attachments"):  # images pasted into a written answer
                cell["attachments"] = copy.deepcopy(answers[cell_id]["attachments"])
        cells.append(cell)
        cells += scratch_after.get(cell_id, [])
    out.cells = cells
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return out, repairs


def oversized_attachments(cell, cell_id: str) -> list[str]:
    """Drop a written answer's pasted images beyond the size of a rich output the grader keeps."""
    attachments = cell.get("attachments") or {}
    size = sum(len(str(data)) for bundle in attachments.values() for data in bundle.values())
    if size <= MAX_ATTACHMENT_CHARS:
        return []
    cell.pop("attachments")
    return [f"{cell_id}: pasted images of {size:,} characters dropped (more than {MAX_ATTACHMENT_CHARS:,})"]


def staged_submission(root: Path, student: str, assignment: str) -> Path:
    """Where the canonical copy of a submission is graded from."""
    return root / STAGING / "submitted" / student / assignment


def stage_submission(root: Path, student: str, assignment: str) -> list[str]:
    """Write the canonical copy of one submission under ``.grading/submitted``; returns flags."""
    src = root / "submitted" / student / assignment
    dst = staged_submission(root, student, assignment)
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints"))
    flags = []
    for release_path in sorted((root / "release" / assignment).glob("*.ipynb")):
        release_nb = notebooks.read(release_path)
        handed_in = src / release_path.name
        if not handed_in.exists():
            flags.append(f"{release_path.stem}: notebook missing, graded as unanswered")
            student_nb = copy.deepcopy(release_nb)
        else:
            try:
                student_nb = notebooks.read(handed_in)
            except (json.JSONDecodeError, nbformat.reader.NotJSONError, ValueError, KeyError) as error:
                flags.append(
                    f"{release_path.stem}: not a valid notebook ({type(error).__name__}), "
                    "graded as unanswered"
                )
                student_nb = copy.deepcopy(release_nb)
        canonical, repairs = canonicalise(release_nb, student_nb)
        flags += [f"{release_path.stem}: {repair}" for repair in repairs]
        notebooks.write(canonical, dst / release_path.name)
    return flags
