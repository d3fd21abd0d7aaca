"""Marking sheets: the mark scheme beside every student's answer, and the import of the marks.

Manually graded answers (cells that are both graded and a solution in ``source/``, here the
written Markdown answers) wait as ``pending`` after autograding. For each such question
``marking-sheets`` writes, under ``reports/marking/``:

- ``<assignment>__<notebook>__<grade_id>.html``: the question, the model answer and the mark scheme
  (from ``source/``) in a column beside every student's answer (from ``autograded/``), Markdown and
  LaTeX rendered offline (MathML, no network), with a points box and a comment box per student and a
  button that downloads the filled CSV;
- ``<assignment>__<notebook>__<grade_id>.csv``: the same marks as a CSV template to fill in by hand,
  columns ``assignment, notebook, grade_id, student, max_points, points, comment``, prefilled with
  what the gradebook holds;
- ``index.html``: every question with how many answers are still to mark.

``import-marks CSV...`` checks every row of every file first (points a number within the cell's
maximum; the assignment, notebook, question and student known; the question manually graded; the
submission autograded; no row twice) and rejects the whole import, naming each bad row and why,
if one fails. Otherwise it writes all marks in one transaction, then regenerates the feedback of
each affected submission so that the student sees the points and the comment. A blank ``points``
or ``comment`` leaves that value as it is in the gradebook.

Students' answers are untrusted text: they are parsed and rendered, never executed; raw HTML in
them is shown as text, links to scripts are dropped, images are not fetched (only images pasted
into the cell are shown) and the page forbids every script but its own.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import html
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from convae import course, notebooks
from convae.grading import commands
from convae.rendering import render_markdown

COLUMNS = ("assignment", "notebook", "grade_id", "student", "max_points", "points", "comment")
KEY = ("assignment", "notebook", "grade_id", "student")


# --- what is marked by hand ------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    """A manually graded answer cell and what the instructor wrote about it in ``source/``."""

    assignment: str
    notebook: str
    grade_id: str
    max_points: float
    prompt: str  # the question (Markdown), the cell before the answer
    model_answer: str
    mark_scheme: str

    @property
    def stem(self) -> str:
        return f"{self.assignment}__{self.notebook}__{self.grade_id}"


@dataclass(frozen=True)
class Answer:
    """One student's answer to a question and its state in the gradebook."""

    student: str
    text: str | None  # None: the cell is not in the autograded notebook
    cell_type: str
    attachments: dict
    manual_score: float | None
    needs_manual_grade: bool
    comment: str | None

    @property
    def status(self) -> str:
        if self.manual_score is not None:
            return "marked"
        if self.needs_manual_grade:
            return "to mark"
        # nbgrader scores a manually graded cell itself only when the release's stub is unchanged.
        return "unanswered"


def split_model_answer(source: str) -> tuple[str, str]:
    """(model answer, mark scheme) of an instructor's answer cell, split at "**Mark scheme"."""
    answer, marker, scheme = source.partition(course.MARK_SCHEME)
    answer = answer.replace(course.MODEL_ANSWER, "", 1).strip()
    return answer, (marker + scheme).strip() if marker else ""


def question_prompt(cells: list, index: int) -> str:
    """The question an answer cell answers: the closest markdown cell before it."""
    for cell in reversed(cells[:index]):
        if cell.cell_type == "markdown" and not notebooks.is_manual_answer(cell):
            return cell.source
    return ""


def source_questions(root: Path, assignment: str, notebook: str, max_points: dict[str, float]) -> list:
    """The manually graded questions of one source notebook, in notebook order."""
    path = root / "source" / assignment / f"{notebook}.ipynb"
    cells = notebooks.read(path).cells if path.exists() else []
    questions = []
    for index, cell in enumerate(cells):
        grade_id = notebooks.grade_id(cell)
        if notebooks.is_manual_answer(cell) and grade_id in max_points:
            model_answer, mark_scheme = split_model_answer(cell.source)
            questions.append(
                Question(
                    assignment,
                    notebook,
                    grade_id,
                    max_points[grade_id],
                    question_prompt(cells, index),
                    model_answer,
                    mark_scheme,
                )
            )
    return questions


def manual_questions(root: Path, gradebook, assignments: Iterable[str] | None = None) -> list[Question]:
    """Every manually graded question the gradebook knows (points from it), text from ``source/``."""
    wanted = set(assignments or ())
    questions = []
    for assignment in sorted(gradebook.assignments, key=lambda a: a.name):
        if wanted and assignment.name not in wanted:
            continue
        for nb in sorted(assignment.notebooks, key=lambda n: n.name):
            solutions = {cell.name for cell in nb.solution_cells}
            max_points = {cell.name: cell.max_score for cell in nb.grade_cells if cell.name in solutions}
            found = source_questions(root, assignment.name, nb.name, max_points)
            # A question the gradebook has but source/ no longer has can still be marked.
            known = {question.grade_id for question in found}
            found += [
                Question(assignment.name, nb.name, name, points, "", "", "")
                for name, points in max_points.items()
                if name not in known
            ]
            questions += found
    return questions


def handed_in_cell(root: Path, folder: str, student: str, question: Question):
    """The answer cell in ``folder`` (autograded/ or submitted/), or None; the file is only parsed."""
    path = root / folder / student / question.assignment / f"{question.notebook}.ipynb"
    try:
        return notebooks.cells_by_id(notebooks.read(path)).get(question.grade_id)
    except Exception:  # noqa: BLE001 -- a missing or unreadable notebook has no answer to show
        return None


def pasted_images(root: Path, student: str, question: Question, cell) -> dict:
    """The images pasted into the answer cell: grading rebuilds each cell from the release and keeps
    only its text, so they are read from the handed-in notebook when the graded one lacks them."""
    if cell.get("attachments"):
        return dict(cell.attachments)
    submitted = handed_in_cell(root, "submitted", student, question)
    return dict(submitted.get("attachments") or {}) if submitted is not None else {}


def student_answers(root: Path, gradebook, question: Question) -> list[Answer]:
    """Every autograded student's answer to ``question``, by student id."""
    from nbgrader.api import MissingEntry

    answers = []
    for submission in gradebook.assignment_submissions(question.assignment):
        student = submission.student_id
        try:
            grade = gradebook.find_grade(question.grade_id, question.notebook, question.assignment, student)
            comment = gradebook.find_comment(
                question.grade_id, question.notebook, question.assignment, student
            ).manual_comment
        except MissingEntry:
            continue  # this submission lacks the notebook in the gradebook: nothing to mark
        cell = handed_in_cell(root, "autograded", student, question)
        answers.append(
            Answer(
                student,
                None if cell is None else cell.source,
                "markdown" if cell is None else cell.cell_type,
                {} if cell is None else pasted_images(root, student, question, cell),
                grade.manual_score,
                bool(grade.needs_manual_grade),
                comment,
            )
        )
    return sorted(answers, key=lambda a: a.student)


def render_answer(answer: Answer) -> str:
    if answer.text is None:
        return '<p class="missing">This cell is not in the autograded notebook.</p>'
    if answer.cell_type == "code":
        return f"<pre><code>{html.escape(answer.text)}</code></pre>"
    return render_markdown(answer.text, answer.attachments)


# --- the sheets ------------------------------------------------------------------------------


def points_text(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def template_rows(question: Question, answers: list[Answer]) -> list[dict]:
    """The CSV rows of one question, prefilled with the gradebook's points and comments."""
    return [
        {
            "assignment": question.assignment,
            "notebook": question.notebook,
            "grade_id": question.grade_id,
            "student": answer.student,
            "max_points": points_text(question.max_points),
            "points": points_text(answer.manual_score),
            "comment": answer.comment or "",
        }
        for answer in answers
    ]


def write_template(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


# The form's script: builds the CSV in the import format from the boxes, and downloads it.
SHEET_SCRIPT = """
(function () {
  "use strict";
  var sheet = document.getElementById("sheet");
  var columns = ["assignment", "notebook", "grade_id", "student", "max_points", "points", "comment"];
  var status = document.getElementById("status");
  var edited = false;
  function cards() { return Array.prototype.slice.call(document.querySelectorAll(".answer")); }
  function quote(value) {
    value = String(value);
    return /[",\\r\\n]/.test(value) ? '"' + value.replace(/"/g, '""') + '"' : value;
  }
  function row(card) {
    return {
      assignment: sheet.dataset.assignment, notebook: sheet.dataset.notebook,
      grade_id: sheet.dataset.gradeId, student: card.dataset.student,
      max_points: sheet.dataset.maxPoints,
      points: card.querySelector("input.points").value.trim(),
      comment: card.querySelector("textarea.comment").value
    };
  }
  function csvText() {
    var lines = [columns.join(",")];
    cards().forEach(function (card) {
      var r = row(card);
      lines.push(columns.map(function (c) { return quote(r[c]); }).join(","));
    });
    return lines.join("\\r\\n") + "\\r\\n";
  }
  function invalid() {
    return cards().filter(function (card) {
      return !card.querySelector("input.points").checkValidity();
    }).map(function (card) { return card.dataset.student; });
  }
  function progress() {
    var marked = cards().filter(function (card) {
      return card.querySelector("input.points").value.trim() !== "" || card.dataset.status === "unanswered";
    }).length;
    document.getElementById("progress").textContent = marked + " of " + cards().length + " have points";
  }
  document.addEventListener("input", function () { edited = true; progress(); });
  document.getElementById("download").addEventListener("click", function () {
    var bad = invalid();
    if (bad.length) {
      status.textContent = "Not downloaded: points must be numbers from 0 to " + sheet.dataset.maxPoints +
        " (check " + bad.join(", ") + ").";
      return;
    }
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([csvText()], {type: "text/csv"}));
    link.download = sheet.dataset.csv;
    document.body.appendChild(link);
    link.click();
    link.remove();
    edited = false;
    status.textContent = "Downloaded " + sheet.dataset.csv + ": import it with import-marks.";
  });
  window.addEventListener("beforeunload", function (event) {
    if (edited) { event.preventDefault(); event.returnValue = ""; }
  });
  progress();
})();
"""
SCRIPT_HASH = base64.b64encode(hashlib.sha256(SHEET_SCRIPT.encode()).digest()).decode()
# Only this page's own script may run, nothing is fetched, no form is sent anywhere.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; script-src 'sha256-{SCRIPT_HASH}'; style-src 'unsafe-inline'; "
    "img-src data:; form-action 'none'; base-uri 'none'"
)

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0; color: #1d232b; background: #f4f5f7; }
header { padding: 0.8em 1.5em; background: #243447; color: white; }
header h1 { margin: 0; font-size: 1.3em; }
header p { margin: 0.2em 0 0; opacity: 0.85; }
main { display: grid; grid-template-columns: minmax(20em, 5fr) minmax(0, 7fr); gap: 1.2em; padding: 1.2em; }
aside { position: sticky; top: 1em; align-self: start; max-height: calc(100vh - 2em); overflow: auto; }
section, .answer { background: white; border: 1px solid #d5d9e0; border-radius: 6px;
  padding: 0.3em 1em 0.8em; margin-bottom: 1em; }
h2.label { font-size: 1em; text-transform: uppercase; letter-spacing: 0.04em; color: #4a5a6e; }
section h1, section h2, section h3, .text h1, .text h2, .text h3 { font-size: 1.05em; }
section.scheme { border-left: 5px solid #c27c0e; }
section.model { border-left: 5px solid #2f7d4f; }
.answer { border-left: 5px solid #3d6db5; }
.answer.unanswered { border-left-color: #9aa3ad; opacity: 0.8; }
.answer.marked { border-left-color: #2f7d4f; }
.answer h2.label { display: flex; justify-content: space-between; gap: 1em; text-transform: none; }
.state { font-weight: normal; color: #4a5a6e; text-align: right; }
.answer h2.label span:first-child { white-space: nowrap; }
.text { border-top: 1px solid #eceef2; overflow-x: auto; }
.marks { display: grid; grid-template-columns: auto 1fr; gap: 0.4em 0.8em; align-items: start;
  border-top: 1px solid #eceef2; padding-top: 0.6em; }
input.points { width: 6em; font-size: 1em; }
input.points:invalid { outline: 2px solid #c0392b; }
textarea.comment { width: 100%; min-height: 3.2em; font: inherit; box-sizing: border-box; }
.toolbar { grid-column: 1 / -1; display: flex; gap: 1em; align-items: center; }
button { font-size: 1em; padding: 0.3em 1em; }
code.tex-source { background: #fdecea; color: #922; }
.image-ref, .missing { color: #7a4; font-style: italic; }
math[display="block"] { margin: 0.6em 0; }
div.math { overflow-x: auto; overflow-y: hidden; }
pre { background: #f6f8fa; padding: 0.6em; overflow-x: auto; }
table { border-collapse: collapse; background: white; }
td, th { border: 1px solid #d5d9e0; padding: 0.2em 0.5em; }
.index { padding: 1.2em; }
@media print {
  main { display: block; } aside { position: static; max-height: none; }
  .toolbar { display: none; } .answer { break-inside: avoid; }
}
"""


def page(title: str, subtitle: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}</p></header>
{body}
</body>
</html>
"""


STATE_TEXT = {
    "marked": "marked",
    "to mark": "to mark",
    "unanswered": "unanswered: 0 from nbgrader (stub unchanged)",
}


def answer_card(answer: Answer, question: Question) -> str:
    """One student's answer with its points and comment boxes."""
    student = html.escape(answer.student)
    field = html.escape(f"{question.grade_id}--{answer.student}")
    points = points_text(answer.manual_score)
    return f"""<article class="answer {answer.status.replace(" ", "-")}" data-student="{student}"
  data-status="{answer.status}">
<h2 class="label"><span>{student}</span>
<span class="state">{html.escape(STATE_TEXT[answer.status])}</span></h2>
<div class="text">{render_answer(answer)}</div>
<div class="marks">
<label for="points--{field}">Points (0 to {points_text(question.max_points)})</label>
<input class="points" id="points--{field}" type="number" min="0" max="{question.max_points:g}" step="any"
  value="{points}">
<label for="comment--{field}">Comment</label>
<textarea class="comment" id="comment--{field}">{html.escape(answer.comment or "")}</textarea>
</div>
</article>"""


def sheet_html(question: Question, answers: list[Answer], csv_name: str) -> str:
    """The grading sheet of one question: instructor's column beside the students' answers."""
    counts = {status: sum(a.status == status for a in answers) for status in STATE_TEXT}
    subtitle = (
        f"{question.max_points:g} points · {len(answers)} submissions: {counts['to mark']} to mark, "
        f"{counts['marked']} marked, {counts['unanswered']} unanswered · "
        f"written {datetime.now():%Y-%m-%d %H:%M} from the gradebook"
    )
    scheme = render_markdown(question.mark_scheme) if question.mark_scheme else "<p>(none in source/)</p>"
    model = render_markdown(question.model_answer) if question.model_answer else "<p>(none in source/)</p>"
    cards = "\n".join(answer_card(answer, question) for answer in answers)
    body = f"""<main id="sheet" data-assignment="{html.escape(question.assignment)}"
  data-notebook="{html.escape(question.notebook)}" data-grade-id="{html.escape(question.grade_id)}"
  data-max-points="{question.max_points:g}" data-csv="{html.escape(csv_name)}">
<aside>
<section class="prompt"><h2 class="label">Question</h2>{render_markdown(question.prompt)}</section>
<section class="scheme"><h2 class="label">Mark scheme</h2>{scheme}</section>
<section class="model"><h2 class="label">Model answer</h2>{model}</section>
</aside>
<div class="answers">
<div class="toolbar"><button id="download" type="button">Download marks (CSV)</button>
<span id="progress"></span><span id="status" role="status"></span></div>
{cards or "<p>No autograded submission yet.</p>"}
<p>Or fill in <a href="{html.escape(csv_name)}">{html.escape(csv_name)}</a> and import it with
<code>import-marks</code>.</p>
</div>
</main>
<script>{SHEET_SCRIPT}</script>"""
    title = f"{question.assignment} / {question.notebook} / {question.grade_id}"
    return page(title, subtitle, body)


def index_html(sheets: list[tuple[Question, list[Answer]]]) -> str:
    """Every question's sheet and template, with how far its marking has gone."""
    rows = []
    for question, answers in sheets:
        counts = [sum(a.status == status for a in answers) for status in STATE_TEXT]
        stem = html.escape(question.stem)
        cells = [html.escape(question.assignment), html.escape(question.notebook)]
        cells += [f'<a href="{stem}.html">{html.escape(question.grade_id)}</a>', f"{question.max_points:g}"]
        cells += [str(len(answers)), *map(str, counts), f'<a href="{stem}.csv">CSV</a>']
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    columns = ["assignment", "notebook", "question (sheet)", "points", "submissions", *STATE_TEXT, "template"]
    header = "<tr>" + "".join(f"<th>{column}</th>" for column in columns) + "</tr>"
    table = f"<table>{header}{''.join(rows)}</table>" if rows else "<p>No manually graded question.</p>"
    body = f'<div class="index">{table}</div>'
    return page("Marking sheets", f"{len(sheets)} manually graded questions", body)


def write_sheets(
    root: Path, out: Path | None = None, assignments: Iterable[str] | None = None, db_url: str | None = None
) -> Path:
    """Write a sheet and a CSV template per manually graded question, and the index; returns it."""
    from nbgrader.api import Gradebook

    out = out or root / "reports" / "marking"
    out.mkdir(parents=True, exist_ok=True)
    sheets = []
    with Gradebook(commands.gradebook_url(root, db_url)) as gradebook:
        for question in manual_questions(root, gradebook, assignments):
            answers = student_answers(root, gradebook, question)
            sheets.append((question, answers))
            csv_name = f"{question.stem}.csv"
            write_template(out / csv_name, template_rows(question, answers))
            (out / f"{question.stem}.html").write_text(
                sheet_html(question, answers, csv_name), encoding="utf-8"
            )
    index = out / "index.html"
    index.write_text(index_html(sheets), encoding="utf-8")
    return index


# --- the import --------------------------------------------------------------------------------


class MarkImportError(Exception):
    """The import was refused; ``errors`` names every bad row and why. Nothing was written."""

    def __init__(self, errors: list[str]):
        super().__init__(f"{len(errors)} problem(s), nothing imported:\n" + "\n".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Mark:
    where: str  # "file.csv line 3", for messages
    assignment: str
    notebook: str
    grade_id: str
    student: str
    max_points: str
    points: float | None  # None: leave the gradebook's points as they are
    comment: str | None  # None: leave the comment as it is

    @property
    def label(self) -> str:
        return f"{self.where} ({self.student}, {self.assignment}/{self.notebook}/{self.grade_id})"


def parse_points(text: str) -> float:
    value = float(text)  # ValueError for anything that is not a number
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_marks(path: Path, errors: list[str]) -> list[Mark]:
    """The rows of one CSV; problems found in the file alone go to ``errors``."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: spreadsheets write a BOM
            return parse_marks(path.name, csv.DictReader(f), errors)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        errors.append(f"{path}: cannot be read as a UTF-8 CSV file ({error})")
        return []


def parse_marks(file_name: str, reader: csv.DictReader, errors: list[str]) -> list[Mark]:
    """The marks of one CSV's rows; a row whose points are not a number goes to ``errors``."""
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or []) and c != "max_points"]
    if missing:
        errors.append(f"{file_name}: missing column(s) {', '.join(missing)}; found {reader.fieldnames}")
        return []
    marks = []
    for row in reader:
        where = f"{file_name} line {reader.line_num}"
        values = {column: (row.get(column) or "").strip() for column in COLUMNS}
        if not any(values.values()):
            continue  # a blank line a spreadsheet left at the end
        points = None
        if values["points"]:
            try:
                points = parse_points(values["points"])
            except ValueError:
                hint = " (use a dot for decimals)" if "," in values["points"] else ""
                errors.append(f"{where}: points {values['points']!r} is not a number{hint}")
                continue
        marks.append(
            Mark(
                where,
                values["assignment"],
                values["notebook"],
                values["grade_id"],
                values["student"],
                values["max_points"],
                points,
                values["comment"] or None,
            )
        )
    return marks


def mark_problem(gradebook, mark: Mark, cells: dict) -> str | None:
    """Why the gradebook cannot take ``mark``, or None. ``cells`` caches (max points, manual?)."""
    from nbgrader.api import MissingEntry

    cell_key = (mark.assignment, mark.notebook, mark.grade_id)
    if cell_key not in cells:
        try:
            gradebook.find_assignment(mark.assignment)
        except MissingEntry:
            return f"unknown assignment {mark.assignment!r}"
        try:
            gradebook.find_notebook(mark.notebook, mark.assignment)
        except MissingEntry:
            return f"unknown notebook {mark.notebook!r} in {mark.assignment}"
        try:
            max_score = gradebook.find_grade_cell(mark.grade_id, mark.notebook, mark.assignment).max_score
        except MissingEntry:
            return f"no graded cell {mark.grade_id!r} in {mark.assignment}/{mark.notebook}"
        try:
            gradebook.find_solution_cell(mark.grade_id, mark.notebook, mark.assignment)
            cells[cell_key] = (max_score, True)
        except MissingEntry:
            cells[cell_key] = (max_score, False)
    max_score, manual = cells[cell_key]
    if not manual:
        return f"{mark.grade_id!r} is graded by its tests, not by hand"
    if mark.max_points:
        try:
            stale = parse_points(mark.max_points) != max_score
        except ValueError:
            stale = True
        if stale:
            return f"max_points {mark.max_points} is not the cell's {max_score:g}: the sheet is out of date"
    if mark.points is not None and not 0 <= mark.points <= max_score:
        return f"points {mark.points:g} are outside 0 to {max_score:g}"
    try:
        gradebook.find_student(mark.student)
    except MissingEntry:
        return f"unknown student {mark.student!r}"
    try:
        gradebook.find_grade(mark.grade_id, mark.notebook, mark.assignment, mark.student)
        gradebook.find_comment(mark.grade_id, mark.notebook, mark.assignment, mark.student)
    except MissingEntry:
        return f"{mark.student} has no autograded submission of {mark.assignment}/{mark.notebook} yet"
    return None


def validate_marks(gradebook, marks: list[Mark]) -> list[str]:
    """Every problem with every mark (row), duplicates included."""
    errors, seen, cells = [], {}, {}
    for mark in marks:
        key = tuple(getattr(mark, name) for name in KEY)
        if key in seen:
            errors.append(f"{mark.label}: the same student and question as {seen[key]}")
            continue
        seen[key] = mark.where
        problem = mark_problem(gradebook, mark, cells)
        if problem:
            errors.append(f"{mark.label}: {problem}")
    return errors


def apply_mark(gradebook, mark: Mark) -> None:
    """Set one mark as the formgrader does (not committed)."""
    ids = (mark.grade_id, mark.notebook, mark.assignment, mark.student)
    if mark.points is not None:
        grade = gradebook.find_grade(*ids)
        grade.manual_score = mark.points
        grade.needs_manual_grade = False
    if mark.comment is not None:
        gradebook.find_comment(*ids).manual_comment = mark.comment


def as_paths(csv_paths) -> list[Path]:
    if isinstance(csv_paths, str | Path):
        return [Path(csv_paths)]
    return [Path(p) for p in csv_paths]


def store_marks(root: Path, csv_paths, db_url: str | None = None) -> list[tuple[str, str]]:
    """Validate every row, then write all marks in one transaction; returns (student, assignment)s.

    Raises ``MarkImportError`` (nothing written) when any row is bad.
    """
    from nbgrader.api import Gradebook

    errors: list[str] = []
    marks = [mark for path in as_paths(csv_paths) for mark in read_marks(path, errors)]
    commands.environment_bin_on_path()  # a fresh gradebook runs alembic by name
    with Gradebook(commands.gradebook_url(root, db_url)) as gradebook:
        errors += validate_marks(gradebook, marks)
        if errors:
            raise MarkImportError(errors)
        changes = [mark for mark in marks if mark.points is not None or mark.comment is not None]
        try:
            for mark in changes:
                apply_mark(gradebook, mark)
            gradebook.db.commit()
        except BaseException:
            gradebook.db.rollback()
            raise
    return sorted({(mark.student, mark.assignment) for mark in changes})


def regenerate_feedback(
    root: Path, submissions: list[tuple[str, str]], db_url: str | None = None
) -> list[str]:
    """nbgrader's feedback for each (student, assignment), with the course's preprocessors (hidden
    tests redacted), in this process; returns a message per failed submission."""
    commands.environment_bin_on_path()
    api = commands.nbgrader_api(
        root,
        {
            "CourseDirectory": {"root": str(root), "db_url": commands.gradebook_url(root, db_url)},
            "Application": {"log_level": "WARN"},
        },
    )
    failures = []
    for student, assignment in submissions:
        result = api.generate_feedback(assignment, student, force=True)
        if not result["success"]:
            detail = (result.get("error") or result.get("log") or "").strip().splitlines()
            failures.append(f"{student}/{assignment}: {detail[-1] if detail else 'failed'}")
    return failures


def import_marks(root: Path, csv_path, db_url: str | None = None, feedback: bool = True) -> list:
    """Import the marks of one CSV (or several) and regenerate the affected feedback.

    Returns the (student, assignment) pairs whose marks changed, for an LMS export to follow.
    Raises ``MarkImportError`` (nothing written) on any bad row, ``RuntimeError`` when the marks
    were stored but some feedback could not be regenerated.
    """
    submissions = store_marks(root, csv_path, db_url)
    failures = regenerate_feedback(root, submissions, db_url) if feedback and submissions else []
    if failures:
        raise RuntimeError("marks imported, but feedback failed for:\n" + "\n".join(failures))
    return submissions


# --- command line --------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``marking-sheets``: one grading sheet and CSV template per manually graded question."""
    parser.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: reports/marking)")
    parser.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: sqlite gradebook.db)")


def run(root: Path, args: argparse.Namespace) -> int:
    index = write_sheets(root, args.out, args.assignment, args.db)
    print(f"marking sheets: {index} (one .html sheet and one .csv template per question beside it)")
    return 0


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """``import-marks``: the filled CSVs into the gradebook, then the students' feedback."""
    parser.add_argument("csv", nargs="+", type=Path, help="filled marking CSV(s), all imported or none")
    parser.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: sqlite gradebook.db)")
    parser.add_argument("--no-feedback", action="store_true", help="do not regenerate the feedback")


def run_import(root: Path, args: argparse.Namespace) -> int:
    try:
        submissions = store_marks(root, args.csv, args.db)
    except MarkImportError as error:
        print("\n".join(error.errors))
        print(f"{len(error.errors)} problem(s): nothing was imported")
        return 1
    print(f"imported marks for {len(submissions)} submission(s) into the gradebook")
    if not submissions:
        return 0
    from convae.review import lms

    for line in lms.refresh_exports(root, args.db):  # the LMS files hold the marks at once
        print(line)
    if args.no_feedback:
        return 0
    failures = regenerate_feedback(root, submissions, args.db)
    for failure in failures:
        print(f"feedback failed: {failure}")
    print(f"feedback regenerated: {root / 'feedback'}/<student>/<assignment>/ ({len(failures)} failed)")
    return 1 if failures else 0
