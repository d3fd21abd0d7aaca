"""Grades for the LMS (Canvas, Moodle) and the course's late-submission policy.

``python -m convae export-lms --format canvas|moodle --roster roster.csv`` writes the gradebook as
a file the LMS imports, one column per assignment, and a details file beside it (per student and
assignment: timestamp, days late, raw score, late penalty, what was exported and why). The same
exporters work through nbgrader's own plugin mechanism::

    nbgrader export --exporter=convae.review.lms.CanvasExport --CanvasExport.roster=roster.csv

What an exported grade is: the gradebook's total for the assignment (autograded plus manual
points, so a mark entered in the formgrader or imported from a marking sheet counts at the next
export) minus the late penalty, never below 0. Before exporting, every late penalty is computed
again from the current score and the configured policy: nbgrader computes it once, at autograde,
when manual points are not in yet, so its stored penalty would miss them. A submission whose
manual cells are not all marked exports blank (``--pending partial``: its points so far), so the
LMS never shows a provisional grade; a student with no submission exports 0 (``--missing blank``:
left blank). Both are listed when the command runs.

The roster is a CSV the course team writes: an ``nbgrader_id`` column (the student's folder name
in ``submitted/``) and the LMS's identity columns. For Canvas, start from Canvas's own gradebook
export, whose first columns are exactly the ones needed (Student, ID, SIS User ID, SIS Login ID,
Section), and add ``nbgrader_id``. For Moodle, one identifier column (``--identifier``, default
``Email address``) that Moodle's import maps to a user field. A gradebook student missing from the
roster stops the export (``--unmatched skip`` leaves them out instead, still listed): their grade
would otherwise never reach the LMS without anyone noticing.

Late submissions (``LatePenalty``, selected in ``nbgrader_config.py``): ``none``, ``zero``, or
``percent_per_day`` of the score per day or part of a day late, capped at the score. nbgrader
applies it at autograde from ``timestamp.txt`` in the submission folder and the assignment's due
date in the gradebook (``nbgrader db assignment add ps1 --duedate="2025-03-01 17:00:00 UTC"``);
a submission without ``timestamp.txt`` is on time.

Nothing here opens a notebook: the tool reads the gradebook and the roster only.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.plugins import ExportPlugin, LateSubmissionPlugin
from traitlets import Dict, Enum, Float, Unicode
from traitlets.config import Config
from traitlets.utils.importstring import import_item

ROSTER_ID = "nbgrader_id"
SECONDS_PER_DAY = 24 * 3600

# --- the late-submission policy -------------------------------------------------------------


def days_late(total_seconds_late: float) -> int:
    """Days late, counting a started day as a whole one (one second late is one day late)."""
    return math.ceil(total_seconds_late / SECONDS_PER_DAY)


class LatePenalty(LateSubmissionPlugin):
    """nbgrader's late-submission plugin with a percentage per day besides ``none`` and ``zero``.

    nbgrader calls it once per late notebook with that notebook's score; the penalty it returns is
    stored per notebook and subtracted from the assignment's total.
    """

    penalty_method = Enum(
        ("none", "zero", "percent_per_day"),
        default_value="none",
        help="none: no penalty; zero: a late submission scores 0; "
        "percent_per_day: percent_per_day of the score per day or part of a day late",
    ).tag(config=True)

    percent_per_day = Float(
        10.0, min=0.0, help="percent of the score lost per started day late (percent_per_day)"
    ).tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float):
        if self.penalty_method == "zero":
            return score
        if self.penalty_method == "percent_per_day":
            fraction = min(1.0, days_late(total_seconds_late) * self.percent_per_day / 100)
            return score * fraction
        return None


def late_policy(config: Config) -> LateSubmissionPlugin:
    """The late-submission plugin the course's config selects for autograde (nbgrader's default
    when it selects none), configured from the same config."""
    chosen = config.AssignLatePenalties.get("plugin_class", LateSubmissionPlugin)
    plugin_class = import_item(chosen) if isinstance(chosen, str) else chosen
    return plugin_class(config=config)


def clamp_penalty(penalty: float | None, score: float) -> float | None:
    """What nbgrader's ``AssignLatePenalties`` stores: the penalty kept within [0, score]."""
    return None if penalty is None else min(max(penalty, 0.0), score)


def refresh_late_penalties(gradebook: Gradebook, policy: LateSubmissionPlugin) -> None:
    """Compute every submitted notebook's late penalty again from its current score.

    The same computation nbgrader's ``AssignLatePenalties`` does at autograde, redone now because
    manual points entered since then change the score the penalty is taken from (and a policy
    changed since then applies without grading again).
    """
    for assignment in gradebook.assignments:
        for submission in gradebook.assignment_submissions(assignment.name):
            seconds = submission.total_seconds_late
            for notebook in submission.notebooks:
                penalty = None
                if seconds > 0:
                    penalty = policy.late_submission_penalty(submission.student.id, notebook.score, seconds)
                notebook.late_submission_penalty = clamp_penalty(penalty, notebook.score)
    gradebook.db.commit()


# --- grades as the LMS gets them --------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentGrade:
    """One student's grade for one assignment, read from the gradebook."""

    student: str
    assignment: str
    max_score: float
    raw_score: float | None = None  # None: no submission
    late_penalty: float = 0.0
    seconds_late: float = 0.0
    timestamp: str = ""
    pending: bool = False  # manually graded cells not all marked yet

    @property
    def status(self) -> str:
        if self.raw_score is None:
            return "missing"
        if self.pending:
            return "pending"
        return "late" if self.seconds_late > 0 else "graded"

    @property
    def score(self) -> float:
        return max(0.0, (self.raw_score or 0.0) - self.late_penalty)


def read_grades(gradebook: Gradebook, assignments: Iterable[str], students: Iterable[str]):
    """Every (student, assignment) pair's grade; a pair with no submission has ``raw_score=None``."""
    grades = []
    for name in assignments:
        assignment = gradebook.find_assignment(name)
        submitted = {s.student.id: s for s in gradebook.assignment_submissions(name)}
        for student in students:
            submission = submitted.get(student)
            if submission is None:
                grades.append(AssignmentGrade(student, name, float(assignment.max_score)))
                continue
            grades.append(
                AssignmentGrade(
                    student,
                    name,
                    float(assignment.max_score),
                    raw_score=float(submission.score),
                    late_penalty=float(submission.late_submission_penalty or 0.0),
                    seconds_late=float(submission.total_seconds_late),
                    timestamp=f"{submission.timestamp} UTC" if submission.timestamp else "",
                    pending=bool(submission.needs_manual_grade),
                )
            )
    return grades


def points(value: float) -> str:
    """A score as both LMSs read it: a decimal point, at most two decimals (Canvas's precision)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def exported_value(grade: AssignmentGrade, pending: str, missing: str) -> str:
    """The cell the LMS gets: blank means "no grade" to Canvas and to Moodle."""
    if grade.status == "missing":
        return "0" if missing == "zero" else ""
    if grade.status == "pending" and pending == "blank":
        return ""
    return points(grade.score)


def explanation(grade: AssignmentGrade) -> str:
    """One line for the student (Moodle feedback) and the course team (details file)."""
    if grade.status == "missing":
        return "no submission"
    parts = []
    if grade.seconds_late > 0:
        days = days_late(grade.seconds_late)
        parts.append(f"{days} day{'s' if days > 1 else ''} late: -{points(grade.late_penalty)} points")
    if grade.pending:
        parts.append("manual marking not finished")
    return "; ".join(parts)


# --- the roster ---------------------------------------------------------------------------------


class ExportError(Exception):
    """An export that would reach the LMS wrong; nothing is written."""


class RosterError(ExportError):
    """The roster cannot be used: a missing column, a duplicate, a row without an LMS identity."""


class UnmatchedStudents(ExportError):
    """Students with submissions but not in the roster, with ``unmatched='fail'``."""


class ColumnError(ExportError):
    """An assignment column name the LMS would not read as an assignment."""


def read_roster(path: Path, required: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """nbgrader id -> the roster row; checks the columns and that every id appears once."""
    if not path.is_file():
        raise RosterError(f"{path}: no such file")
    with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
        reader = csv.DictReader(f)
        missing = [c for c in (ROSTER_ID, *required) if c not in (reader.fieldnames or [])]
        if missing:
            raise RosterError(f"{path}: missing column(s) {', '.join(missing)}")
        roster = {}
        for line, row in enumerate(reader, start=2):
            row = {key: (value or "").strip() for key, value in row.items() if key is not None}
            student = row[ROSTER_ID]
            if not student:
                raise RosterError(f"{path} line {line}: empty {ROSTER_ID}")
            if student in roster:
                raise RosterError(f"{path} line {line}: {student} appears twice")
            roster[student] = row
    return roster


def check_unique(roster: dict[str, dict[str, str]], column: str, path: Path) -> None:
    seen = {}
    for student, row in roster.items():
        value = row[column]
        if value and value in seen:
            raise RosterError(f"{path}: {column} {value!r} belongs to both {seen[value]} and {student}")
        seen[value] = student


# --- the LMS formats ----------------------------------------------------------------------------


class LmsExport(ExportPlugin):
    """What both formats share: the roster, the column names, the policies, the details file."""

    format_name = "lms"
    summary: ExportSummary | None = None  # set by export()

    roster = Unicode("roster.csv", help="CSV: nbgrader_id and the LMS's identity columns").tag(config=True)
    columns = Dict(
        value_trait=Unicode(),
        help="assignment -> its column name in the LMS (default: the assignment's name)",
    ).tag(config=True)
    pending = Enum(
        ("blank", "partial"),
        default_value="blank",
        help="a submission with unmarked manual cells: blank, or its points so far",
    ).tag(config=True)
    missing = Enum(
        ("zero", "blank"), default_value="zero", help="a roster student with no submission: 0, or blank"
    ).tag(config=True)
    unmatched = Enum(
        ("fail", "skip"),
        default_value="fail",
        help="a student with a submission but not in the roster: stop the export, or leave them out",
    ).tag(config=True)

    # --- what a format defines --------------------------------------------------------------

    @property
    def identity_columns(self) -> tuple[str, ...]:
        """The roster columns the format copies into the file."""
        raise NotImplementedError

    def check_roster(self, roster: dict[str, dict[str, str]], path: Path) -> None:
        """Reject a roster the LMS would not match."""

    def check_columns(self, names: list[str]) -> None:
        """Reject assignment column names the LMS would not read as assignments."""

    def header(self, assignments: list[str]) -> list[str]:
        raise NotImplementedError

    def extra_rows(self, assignments: list[str], max_scores: dict[str, float]) -> list[list[str]]:
        """Rows between the header and the students."""
        return []

    def row(self, identity: dict[str, str], grades: list[AssignmentGrade]) -> list[str]:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------------

    def column(self, assignment: str) -> str:
        return self.columns.get(assignment, assignment)

    def cell(self, grade: AssignmentGrade) -> str:
        return exported_value(grade, self.pending, self.missing)

    def export(self, gradebook: Gradebook) -> None:
        roster_path = Path(self.roster)
        roster = read_roster(roster_path, self.identity_columns)
        self.check_roster(roster, roster_path)
        chosen = [a for a in gradebook.assignments if not self.assignment or a.name in self.assignment]
        assignments = [a.name for a in chosen]
        self.check_columns([self.column(a) for a in assignments])
        wanted = set(self.student)
        submitted = {
            s.student.id
            for a in assignments
            for s in gradebook.assignment_submissions(a)
            if not wanted or s.student.id in wanted
        }
        unmatched = sorted(submitted - set(roster))
        if unmatched and self.unmatched == "fail":
            raise UnmatchedStudents(
                f"submissions from students not in {roster_path}: {', '.join(unmatched)} (add them to "
                f"the roster, or leave them out: --unmatched skip, --{type(self).__name__}.unmatched=skip)"
            )

        policy = late_policy(self.config)
        refresh_late_penalties(gradebook, policy)
        students = [s for s in roster if not wanted or s in wanted]
        grades = read_grades(gradebook, assignments, students)
        target = Path(self.to or f"{self.format_name}.csv")
        rows = [self.header(assignments)]
        rows += self.extra_rows(assignments, {a.name: float(a.max_score) for a in chosen})
        rows += [self.row(roster[s], [g for g in grades if g.student == s]) for s in students]
        write_csv(target, rows)
        details = target.with_name(f"{target.stem}_details.csv")
        write_csv(details, self.details_rows(grades))
        cells = {(g.student, g.assignment): self.cell(g) for g in grades}
        self.summary = ExportSummary(
            self.format_name, target, details, describe_policy(policy), grades, cells, unmatched
        )
        for line in self.summary.lines():
            self.log.info(line)

    def details_rows(self, grades: list[AssignmentGrade]) -> list[list[str]]:
        rows = [DETAILS_HEADER]
        for g in grades:
            rows.append(
                [
                    g.student,
                    g.assignment,
                    self.column(g.assignment),
                    g.timestamp,
                    f"{g.seconds_late / SECONDS_PER_DAY:.2f}",
                    "" if g.raw_score is None else points(g.raw_score),
                    points(g.late_penalty),
                    points(g.max_score),
                    self.cell(g),
                    g.status,
                    explanation(g),
                ]
            )
        return rows


DETAILS_HEADER = [
    "nbgrader_id",
    "assignment",
    "lms_column",
    "timestamp",
    "days_late",
    "raw_score",
    "late_penalty",
    "max_score",
    "exported",
    "status",
    "note",
]


# Canvas's gradebook importer (instructure/canvas-lms, app/models/gradebook_importer.rb) reads a
# header whose first cell contains "Student" and second "ID", then either "SIS Login ID" or "SIS
# User ID", "SIS Login ID", then "Section" as the last student column; every later column is an
# assignment, "Title (123)" for the existing assignment with id 123, any other title for a new one
# (Assignment.title_and_id). A row whose first cell contains "Points Possible" sets the points of
# new assignments. A student is found by ID (the Canvas user id, read as a number), else by SIS
# User ID, else SIS Login ID, else by name; an empty grade or "-" is no grade.
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_RESERVED = (*CANVAS_IDENTITY, "LastName", "FirstName", "Integration ID", "Root Account")
# Columns the importer drops as not assignments, by substring (so "Final Grade project" is dropped).
CANVAS_NOT_ASSIGNMENTS = (
    "Current Score",
    "Current Points",
    "Current Grade",
    "Final Score",
    "Final Points",
    "Final Grade",
    "Override Score",
    "Override Grade",
    "Override Status",
)


class CanvasExport(LmsExport):
    """Canvas's gradebook import CSV: Student, ID, SIS User ID, SIS Login ID, Section, assignments."""

    format_name = "canvas"

    @property
    def identity_columns(self):
        return CANVAS_IDENTITY

    def check_roster(self, roster, path):
        for student, row in roster.items():
            if not (row["ID"] or row["SIS User ID"] or row["SIS Login ID"]):
                raise RosterError(f"{path}: {student} has no ID, SIS User ID or SIS Login ID")
            if row["ID"] and not row["ID"].isdigit():
                raise RosterError(f"{path}: {student}'s ID {row['ID']!r} is not a Canvas user id (a number)")
        for column in ("ID", "SIS User ID", "SIS Login ID"):
            check_unique(roster, column, path)

    def check_columns(self, names):
        for name in names:
            if name in CANVAS_RESERVED or any(word in name for word in CANVAS_NOT_ASSIGNMENTS):
                raise ColumnError(f"Canvas would not read {name!r} as an assignment column: rename it")

    def header(self, assignments):
        return [*CANVAS_IDENTITY, *(self.column(a) for a in assignments)]

    def extra_rows(self, assignments, max_scores):
        blanks = [""] * (len(CANVAS_IDENTITY) - 1)
        return [["Points Possible", *blanks, *(points(max_scores[a]) for a in assignments)]]

    def row(self, identity, grades):
        return [*(identity[c] for c in CANVAS_IDENTITY), *(self.cell(g) for g in grades)]


# Moodle's CSV grade import (grade/import/csv/classes/load_data.php; docs.moodle.org "Grade
# import"): each column is mapped on the import page, one to identify the user (mapping "Email
# address" to useremail, "ID number" to useridnumber, "Username" to username), each grade column
# to a grade item (or a new one named by its header), each feedback column to an item's feedback.
# An empty grade or "-" is no grade; a row whose user is not found, or whose identifier is empty,
# aborts the whole import, so every row here has an identifier from the roster.
MOODLE_IDENTIFIERS = ("Email address", "ID number", "Username")


class MoodleExport(LmsExport):
    """Moodle's CSV grade import: an identifier column, then each assignment's grade and feedback."""

    format_name = "moodle"

    identifier = Unicode(
        "Email address", help="the roster column that identifies a Moodle user (mapped on import)"
    ).tag(config=True)

    @property
    def identity_columns(self):
        return (self.identifier,)

    def check_roster(self, roster, path):
        for student, row in roster.items():
            if not row[self.identifier]:
                raise RosterError(f"{path}: {student} has no {self.identifier} (Moodle aborts on such a row)")
        check_unique(roster, self.identifier, path)

    def header(self, assignments):
        return [self.identifier, *(c for a in assignments for c in (self.column(a), self.feedback_column(a)))]

    def feedback_column(self, assignment: str) -> str:
        return f"{self.column(assignment)} (feedback)"

    def row(self, identity, grades):
        return [identity[self.identifier], *(c for g in grades for c in (self.cell(g), explanation(g)))]


FORMATS = {"canvas": CanvasExport, "moodle": MoodleExport}


# --- running it ---------------------------------------------------------------------------------


@dataclass
class ExportSummary:
    """What one export wrote, and what the course team should look at."""

    format_name: str
    path: Path
    details: Path
    policy: str  # the late policy applied, in words
    grades: list[AssignmentGrade] = field(default_factory=list)
    cells: dict[tuple[str, str], str] = field(default_factory=dict)  # (student, assignment) -> exported
    unmatched: list[str] = field(default_factory=list)  # left out: not in the roster

    def lines(self) -> list[str]:
        students = len({g.student for g in self.grades})
        assignments = len({g.assignment for g in self.grades})
        lines = [
            f"{self.format_name}: {plural(students, 'student')}, {plural(assignments, 'assignment')}, "
            f"late policy {self.policy} -> {self.path}",
            f"details (timestamps, penalties, why each cell is what it is): {self.details}",
        ]
        for g in self.grades:
            if g.status != "graded":
                value = self.cells[g.student, g.assignment] or "blank"
                lines.append(f"  {g.status:8} {g.student}/{g.assignment}: {explanation(g)} -> {value}")
        if self.unmatched:
            lines.append(f"  not in the roster, left out: {', '.join(self.unmatched)}")
        return lines


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def describe_policy(policy: LateSubmissionPlugin) -> str:
    method = getattr(policy, "penalty_method", type(policy).__name__)
    if method == "percent_per_day":
        return f"{points(policy.percent_per_day)}% per started day"
    return str(method)


def write_csv(path: Path, rows: list[list[str]]) -> None:
    """Write through a temporary file, so that a failed export never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def course_config(root: Path) -> Config:
    """The course's ``nbgrader_config.py``: its late policy and any ``CanvasExport`` settings."""
    from convae.grading.commands import course_config as load_course_config

    if not (root / "nbgrader_config.py").is_file():
        raise ExportError(f"{root} is not a course folder: it has no nbgrader_config.py")
    return load_course_config(root)


def export_grades(
    root: Path,
    fmt: str,
    roster: Path,
    out: Path | None = None,
    db_url: str | None = None,
    **options,
) -> ExportSummary:
    """Export the gradebook for ``fmt`` ("canvas" or "moodle"); returns what was written.

    ``options`` are the exporter's settings (``columns``, ``pending``, ``missing``, ``unmatched``,
    ``assignment``, ``student``; Moodle: ``identifier``). Raises an ``ExportError`` (nothing is
    written) for an unusable roster, a column name the LMS would misread, or a student with a
    submission who is not in the roster. Call it right after marks are entered: the files hold them.
    """
    from convae.grading.commands import environment_bin_on_path, gradebook_url

    environment_bin_on_path()
    plugin_class = FORMATS[fmt]
    out = out or root / "reports" / "lms" / f"{fmt}.csv"
    settings = {"roster": str(roster), "to": str(out), **{k: v for k, v in options.items() if v is not None}}
    config = course_config(root)
    config.merge(Config({plugin_class.__name__: settings}))
    plugin = plugin_class(config=config)
    with Gradebook(gradebook_url(root, db_url)) as gradebook:
        plugin.export(gradebook)
    return plugin.summary


def column_pair(text: str) -> tuple[str, str]:
    """``"ps1=Problem set 1 (4321)"`` -> ``("ps1", "Problem set 1 (4321)")`` (an argparse type)."""
    assignment, sep, name = text.partition("=")
    if not sep or not assignment.strip() or not name.strip():
        raise argparse.ArgumentTypeError(f"wants ASSIGNMENT=NAME, got {text!r}")
    return assignment.strip(), name.strip()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=sorted(FORMATS), required=True, help="the LMS to import into")
    parser.add_argument("--roster", type=Path, required=True, help="CSV: nbgrader_id + the LMS identity")
    parser.add_argument("--out", type=Path, default=None, help="default: reports/lms/<format>.csv")
    parser.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: sqlite gradebook.db)")
    parser.add_argument(
        "--column",
        action="append",
        type=column_pair,
        metavar="ASSIGNMENT=NAME",
        help='the LMS column of an assignment, e.g. ps1="Problem set 1 (4321)" (Canvas: the id in '
        "parentheses updates that assignment; a plain name creates one); repeatable",
    )
    parser.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    parser.add_argument(
        "--pending",
        choices=["blank", "partial"],
        default="blank",
        help="a submission with unmarked manual cells exports blank (default) or its points so far",
    )
    parser.add_argument(
        "--missing",
        choices=["zero", "blank"],
        default="zero",
        help="a roster student with no submission exports 0 (default) or blank",
    )
    parser.add_argument(
        "--unmatched",
        choices=["fail", "skip"],
        default="fail",
        help="a submission from a student not in the roster stops the export (default) or is left out",
    )
    parser.add_argument(
        "--identifier",
        default=None,
        help=f"Moodle: the roster column that identifies users (default: Email address; or one of "
        f"{', '.join(MOODLE_IDENTIFIERS[1:])})",
    )


def run(root: Path, args: argparse.Namespace) -> int:
    options = {
        "columns": dict(args.column or []),
        "assignment": args.assignment,
        "pending": args.pending,
        "missing": args.missing,
        "unmatched": args.unmatched,
    }
    if args.format == "moodle":
        options["identifier"] = args.identifier
    elif args.identifier:
        print("error: --identifier is for --format moodle")
        return 2
    try:
        summary = export_grades(root, args.format, args.roster, args.out, args.db, **options)
    except ExportError as error:
        print(f"error: {error}; nothing was written")
        return 1
    record_export(root, args.format, args.roster, summary.path, args.db, options)
    print("\n".join(summary.lines()))
    return 0


# --- exports kept up to date ---------------------------------------------------------------------

RECORDED = Path("reports") / "lms" / "exports.json"


def recorded_exports(root: Path) -> dict:
    """Output file -> the export that made it (``record_export``)."""
    path = root / RECORDED
    return json.loads(path.read_text()) if path.exists() else {}


def record_export(root: Path, fmt: str, roster: Path, out: Path, db_url: str | None, options: dict) -> None:
    """Remember an export made by the command, so that ``refresh_exports`` can make it again when
    marks are imported (one entry per output file, the latest settings win)."""
    recorded = recorded_exports(root)
    recorded[str(Path(out).resolve())] = {
        "format": fmt,
        "roster": str(Path(roster).resolve()),
        "db_url": db_url,
        "options": options,
    }
    path = root / RECORDED
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recorded, indent=1, sort_keys=True))


def refresh_exports(root: Path, db_url: str | None = None) -> list[str]:
    """Make every recorded export of this gradebook again (after marks were imported); returns a
    line per export: where it went, or why it failed (a failed export leaves its old file)."""
    lines = []
    for out, entry in recorded_exports(root).items():
        if entry["db_url"] != db_url:
            continue  # an export of another gradebook
        try:
            summary = export_grades(
                root, entry["format"], Path(entry["roster"]), Path(out), db_url, **entry["options"]
            )
            lines.append(f"{entry['format']} grades exported again: {summary.path}")
        except ExportError as error:
            lines.append(f"{entry['format']} export to {out} failed: {error}; its old file is unchanged")
    return lines
