"""The course pipeline: release, example class, autograde, feedback, export, grade table.

Every step shells out to the real ``nbgrader`` so that what the tests prove is what an
instructor runs. ``root`` is a course folder (this repository, or a copy of it in a temporary
directory); nothing here writes outside it.
"""

from __future__ import annotations

import csv
import os
import runpy
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from convae import notebooks
from convae.grading.commands import assignments, environment_bin_on_path, gradebook_url, nbgrader

SOLUTION = "solution"  # in the example-class spec: "copy the instructor's answer"


def source_notebooks(root: Path, assignment: str) -> list[Path]:
    return sorted((root / "source" / assignment).glob("*.ipynb"))


def notebook_points(path: Path) -> tuple[float, float]:
    """(autograded, manually graded) points of a source notebook: its test cells and written answers."""
    auto = manual = 0.0
    for cell in notebooks.read(path).cells:
        points = float(notebooks.nbgrader_meta(cell).get("points") or 0)
        if notebooks.is_test_cell(cell):
            auto += points
        elif notebooks.is_manual_answer(cell):
            manual += points
    return auto, manual


def generate_release(root: Path) -> None:
    """Regenerate ``release/`` from ``source/`` (solutions, hidden tests and outputs removed)."""
    for assignment in assignments(root):
        nbgrader(root, "generate_assignment", assignment, "--force")


# --- the example class --------------------------------------------------------------------


def load_example_class(root: Path) -> dict:
    """The bundled example class: who answers what (``examples/example_class.py``)."""
    return runpy.run_path(str(root / "examples" / "example_class.py"))["STUDENTS"]


MODEL_ANSWER, MARK_SCHEME = "**Model answer.**", "**Mark scheme"


def answer_text(answer: str, source_cell) -> str:
    """What a student wrote: the given text, or the instructor's solution as a student would
    hand it in (code without the solution markers; a markdown answer without its mark scheme)."""
    if answer != SOLUTION:
        return answer
    if source_cell.cell_type == "markdown":
        return source_cell.source.split(MARK_SCHEME)[0].replace(MODEL_ANSWER, "").strip()
    kept = [
        line
        for line in source_cell.source.splitlines()
        if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
    ]
    return "\n".join(kept)


def build_submission(root: Path, student: str, answers: dict, assignment: str) -> None:
    """Write ``submitted/<student>/<assignment>/`` from the release and the student's answers."""
    target = root / "submitted" / student / assignment
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for release_path in sorted((root / "release" / assignment).glob("*.ipynb")):
        notebook = release_path.stem
        wanted = answers if answers == SOLUTION else answers.get(f"{assignment}/{notebook}", {})
        if wanted == "missing":
            continue
        nb = answered(release_path, root / "source" / assignment / release_path.name, wanted)
        notebooks.write(nb, target / release_path.name)


def answered(release_path: Path, source_path: Path, wanted):
    """A released notebook with a student's answers typed in: ``wanted`` is SOLUTION (every answer
    cell the instructor's solution) or ``{grade_id: answer}``."""
    source_cells = notebooks.cells_by_id(notebooks.read(source_path))
    nb = notebooks.read(release_path)
    for cell in nb.cells:
        answer = wanted.get(notebooks.grade_id(cell)) if isinstance(wanted, dict) else None
        if wanted == SOLUTION and notebooks.nbgrader_meta(cell).get("solution"):
            answer = SOLUTION
        if answer is not None:
            cell.source = answer_text(answer, source_cells[notebooks.grade_id(cell)])
    return nb


def build_submission_for_all(root: Path, student: str, answers) -> None:
    """One student's submissions for every assignment."""
    for assignment in assignments(root):
        build_submission(root, student, answers, assignment)


def build_example_class(root: Path) -> list[str]:
    """Write every example student's submissions; returns the student ids."""
    students = load_example_class(root)
    for student, answers in students.items():
        build_submission_for_all(root, student, answers)
    return list(students)


# --- grading --------------------------------------------------------------------------------


def export_grades(root: Path, path: Path) -> None:
    nbgrader(root, "export", f"--to={path}")


@dataclass(frozen=True)
class NotebookGrade:
    student: str
    assignment: str
    notebook: str
    score: float
    max_score: float
    needs_manual_grade: bool


def notebook_grades(root: Path, db_url: str | None = None) -> list[NotebookGrade]:
    """Per-notebook scores from the gradebook, sorted by student, assignment, notebook."""
    from nbgrader.api import Gradebook

    environment_bin_on_path()
    grades = []
    with Gradebook(gradebook_url(root, db_url)) as gradebook:
        for assignment in gradebook.assignments:
            for submission in gradebook.assignment_submissions(assignment.name):
                for nb in submission.notebooks:
                    grades.append(
                        NotebookGrade(
                            submission.student_id,
                            assignment.name,
                            nb.name,
                            float(nb.score),
                            float(nb.max_score),
                            bool(nb.needs_manual_grade),
                        )
                    )
    return sorted(grades, key=lambda g: (g.student, g.assignment, g.notebook))


def write_grade_table(grades: list[NotebookGrade], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "notebook", "score", "max_score", "needs_manual_grade"])
        for g in grades:
            writer.writerow(
                [
                    g.student,
                    g.assignment,
                    g.notebook,
                    f"{g.score:g}",
                    f"{g.max_score:g}",
                    g.needs_manual_grade,
                ]
            )


def format_grade_table(grades: list[NotebookGrade]) -> str:
    rows = [("student", "assignment/notebook", "score", "manual")]
    rows += [
        (
            g.student,
            f"{g.assignment}/{g.notebook}",
            f"{g.score:g} / {g.max_score:g}",
            "pending" if g.needs_manual_grade else "",
        )
        for g in grades
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def grade_example_class(
    root: Path, jobs: int | None = None, sandbox_mode: str = "auto"
) -> list[NotebookGrade]:
    """The main job: release, example class, graded in parallel (sandboxed when possible), exports."""
    from convae.grading import pipeline

    os.environ.pop("NBGRADER_EXECUTION", None)
    enabled, sandbox_note = pipeline.sandbox_setting(sandbox_mode)
    settings, problem = pipeline.machine_settings(pipeline.Settings(root, sandbox=enabled), jobs)
    print(pipeline.grading_note(settings, sandbox_note, problem), file=sys.stderr)
    generate_release(root)
    build_example_class(root)
    pipeline.grade_class(settings, jobs=jobs)
    export_grades(root, root / "autograded" / "grades.csv")
    grades = notebook_grades(root)
    write_grade_table(grades, root / "autograded" / "notebook_grades.csv")
    return grades
