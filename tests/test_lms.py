"""LMS export and the late policy, end to end: a ps1-only copy of the course, three students who
hand in the instructor's answers on time, 20 hours late and 2.5 days late (``timestamp.txt``),
graded once by the real pipeline with ``LatePenalty`` at 10 % per started day; then marked,
exported for Canvas and Moodle, and checked against the columns each importer reads."""

import argparse
import csv
import re
import shutil
from datetime import datetime, timedelta

import pytest
from conftest import copy_course
from nbgrader.api import Gradebook

from convae import course
from convae.grading import commands, pipeline
from convae.review import lms

DUE = datetime(2025, 3, 1, 17, 0, 0)
HANDED_IN = {  # student -> when, relative to the due date
    "ontime": timedelta(hours=-1),
    "oneday": timedelta(hours=20),  # part of a day counts as a day
    "late": timedelta(days=2, hours=12),  # 3 started days
}
ABSENT = "absent"  # in the roster, never handed anything in
ASSIGNMENT_COLUMN = "Problem set 1 (4321)"  # Canvas: update the existing assignment 4321
MAX_SCORE = 46.0  # ps1: 36 autograded points, 10 marked by hand

ROSTER = [
    # nbgrader_id, Student, ID, SIS User ID, SIS Login ID, Section, Email address
    ("ontime", "Onn, Tim", "1001", "S1001", "tonn", "Group A", "tim@example.edu"),
    ("oneday", 'Day, "One"', "1002", "S1002", "oday", "Group A", "one@example.edu"),
    ("late", "Late, Lea", "1003", "", "llate", "Group B", "lea@example.edu"),
    (ABSENT, "Sent, Ab", "1004", "S1004", "asent", "Group B", "ab@example.edu"),
]
ROSTER_HEADER = ("nbgrader_id", *lms.CANVAS_IDENTITY, "Email address")

POLICY = """
c.AssignLatePenalties.plugin_class = "convae.review.lms.LatePenalty"
c.LatePenalty.penalty_method = "{method}"
c.LatePenalty.percent_per_day = 10.0
"""


def set_policy(root, method):
    """The lines the course's nbgrader_config.py gets, with ``method``, after the course's own."""
    original = root / "nbgrader_config.original.py"
    if not original.exists():
        shutil.copy(root / "nbgrader_config.py", original)
    (root / "nbgrader_config.py").write_text(original.read_text() + POLICY.format(method=method))


def write_roster(path, rows=ROSTER, header=ROSTER_HEADER):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return path


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def autograde_penalties(root):
    """(student, notebook) -> (score, late penalty) as autograde stored them."""
    with Gradebook(course.gradebook_url(root)) as gb:
        return {
            (s.student.id, nb.name): (nb.score, nb.late_submission_penalty)
            for s in gb.assignment_submissions("ps1")
            for nb in s.notebooks
        }


@pytest.fixture(scope="module")
def late_class(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("lms"))
    for other in ("ps2", "ps3"):  # a one-assignment course grades in a third of the time
        shutil.rmtree(root / "source" / other)
    set_policy(root, "percent_per_day")
    commands.nbgrader(root, "generate_assignment", "ps1", "--force")
    with Gradebook(course.gradebook_url(root)) as gb:
        gb.update_or_create_assignment("ps1", duedate=f"{DUE} UTC")
    for student, offset in HANDED_IN.items():
        course.build_submission(root, student, course.SOLUTION, "ps1")
        stamp = f"{DUE + offset:%Y-%m-%d %H:%M:%S.%f} UTC"  # nbgrader's own timestamp.txt format
        (root / "submitted" / student / "ps1" / "timestamp.txt").write_text(stamp)
    # The late penalty is computed in the worker, outside any sandbox: no need for one here.
    results = pipeline.grade_class(pipeline.Settings(root, sandbox=False), jobs=3, progress=False)
    assert [r.status for r in results] == ["ok"] * 3, [r.flags for r in results]
    return root, autograde_penalties(root)


def mark_manual_cells(root, score):
    """Enter (``score``: full marks) or clear (``None``) every manual mark, as the formgrader does."""
    with Gradebook(course.gradebook_url(root)) as gb:
        for submission in gb.assignment_submissions("ps1"):
            for nb in submission.notebooks:
                for grade in nb.grades:
                    if grade.auto_score is None:
                        grade.manual_score = None if score is None else grade.max_score
                        grade.needs_manual_grade = score is None
        gb.db.commit()


def export(root, fmt, tmp_path, columns=None, **options):
    roster = write_roster(tmp_path / "roster.csv")
    columns = columns or {"ps1": ASSIGNMENT_COLUMN}
    return lms.export_grades(root, fmt, roster, tmp_path / f"{fmt}.csv", columns=columns, **options)


def exported(summary):
    """nbgrader id -> the exported ps1 cell, from the details file."""
    return {row["nbgrader_id"]: row["exported"] for row in csv.DictReader(open(summary.details))}


def canvas_header_problems(header):
    """What Canvas's gradebook importer (instructure/canvas-lms, app/models/gradebook_importer.rb:
    row_has_student_headers?, update_column_count, header?) refuses or misreads in a header row."""
    problems = []
    if not (len(header) > 3 and "Student" in header[0] and "ID" in header[1]):
        problems.append("first columns are not Student, ID")
    if not (re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3])):
        problems.append("SIS User ID, SIS Login ID do not follow ID")
    if "Section" not in header[4]:
        problems.append("Section is not the last student column")
    return problems


# --- the late policy ----------------------------------------------------------------------------


def test_penalty_counts_started_days_and_never_exceeds_the_score():
    plugin = lms.LatePenalty(penalty_method="percent_per_day", percent_per_day=10.0)
    day = lms.SECONDS_PER_DAY
    assert plugin.late_submission_penalty("s", 20.0, 1) == pytest.approx(2.0)
    assert plugin.late_submission_penalty("s", 20.0, day) == pytest.approx(2.0)
    assert plugin.late_submission_penalty("s", 20.0, day + 1) == pytest.approx(4.0)
    assert plugin.late_submission_penalty("s", 20.0, 15 * day) == pytest.approx(20.0)
    assert lms.LatePenalty(penalty_method="zero").late_submission_penalty("s", 20.0, 1) == 20.0
    assert lms.LatePenalty().late_submission_penalty("s", 20.0, 1) is None


def test_timestamps_survive_staging_and_reach_the_gradebook(late_class):
    root, _ = late_class
    with Gradebook(course.gradebook_url(root)) as gb:
        for student, offset in HANDED_IN.items():
            submission = gb.find_submission("ps1", student)
            assert submission.timestamp == DUE + offset
            assert submission.total_seconds_late == max(0.0, offset.total_seconds())
    assert (root / "autograded" / "late" / "ps1" / "timestamp.txt").exists()


def test_autograde_applies_the_configured_percentage_per_notebook(late_class):
    _, at_autograde = late_class
    for (student, notebook), (score, penalty) in at_autograde.items():
        assert score > 0, f"{student}/{notebook} earned nothing: the class did not grade"
        expected = {"ontime": None, "oneday": 0.1 * score, "late": 0.3 * score}[student]
        assert penalty == pytest.approx(expected), f"{student}/{notebook}"


def test_recomputing_the_penalties_reproduces_what_autograde_stored(late_class):
    """The export's recomputation is nbgrader's own, given the same scores and policy."""
    root, at_autograde = late_class
    set_policy(root, "percent_per_day")
    mark_manual_cells(root, None)  # the scores autograde saw
    with Gradebook(course.gradebook_url(root)) as gb:
        lms.refresh_late_penalties(gb, lms.late_policy(lms.course_config(root)))
    assert autograde_penalties(root) == at_autograde


# --- the exports --------------------------------------------------------------------------------


def test_canvas_export_before_marking_has_the_documented_columns_and_blank_pending(late_class, tmp_path):
    root, _ = late_class
    set_policy(root, "percent_per_day")
    mark_manual_cells(root, None)
    summary = export(root, "canvas", tmp_path)
    rows = read_csv(summary.path)

    header, points_row, *students = rows
    assert canvas_header_problems(header) == []
    assert header == [*lms.CANVAS_IDENTITY, ASSIGNMENT_COLUMN]
    assert re.fullmatch(r"(.*)\s\((\d+)\)", header[-1]).group(2) == "4321"  # Assignment.title_and_id
    assert "Points Possible" in points_row[0] and points_row[-1] == "46"
    assert [r[:5] for r in students] == [list(r[1:6]) for r in ROSTER]  # identities, quotes and all
    assert {r[1]: r[-1] for r in students} == {"1001": "", "1002": "", "1003": "", "1004": "0"}
    statuses = {g.student: g.status for g in summary.grades}
    assert statuses == {"ontime": "pending", "oneday": "pending", "late": "pending", ABSENT: "missing"}
    assert "manual marking not finished" in "\n".join(summary.lines())

    # The other choices: the points so far (36 autograded, less 10 % or 30 %), and blank for absent.
    partial = export(root, "canvas", tmp_path, pending="partial", missing="blank")
    assert exported(partial) == {"ontime": "36", "oneday": "32.4", "late": "25.2", ABSENT: ""}


def test_marks_entered_count_at_the_next_export_and_the_penalty_follows_them(late_class, tmp_path):
    root, _ = late_class
    set_policy(root, "percent_per_day")
    mark_manual_cells(root, "full")
    summary = export(root, "canvas", tmp_path)
    assert exported(summary) == {"ontime": "46", "oneday": "41.4", "late": "32.2", ABSENT: "0"}
    canvas = {r[1]: r[-1] for r in read_csv(summary.path)[2:]}
    assert canvas == {"1001": "46", "1002": "41.4", "1003": "32.2", "1004": "0"}

    # The refreshed penalties are in the gradebook, so nbgrader's own export agrees.
    commands.nbgrader(root, "export", f"--to={tmp_path / 'nbgrader.csv'}")
    nbgrader_rows = {r["student_id"]: r for r in csv.DictReader(open(tmp_path / "nbgrader.csv"))}
    assert float(nbgrader_rows["late"]["late_submission_penalty"]) == pytest.approx(0.3 * MAX_SCORE)
    assert float(nbgrader_rows["oneday"]["score"]) == pytest.approx(41.4)


def test_moodle_export_identifies_by_email_and_explains_the_penalty(late_class, tmp_path):
    root, _ = late_class
    set_policy(root, "percent_per_day")
    mark_manual_cells(root, "full")
    summary = export(root, "moodle", tmp_path)
    header, *rows = read_csv(summary.path)
    assert header == ["Email address", ASSIGNMENT_COLUMN, f"{ASSIGNMENT_COLUMN} (feedback)"]
    by_email = {r[0]: r[1:] for r in rows}
    assert set(by_email) == {r[6] for r in ROSTER}  # every row identifies a Moodle user
    assert by_email["one@example.edu"] == ["41.4", "1 day late: -4.6 points"]
    assert by_email["lea@example.edu"] == ["32.2", "3 days late: -13.8 points"]
    assert by_email["tim@example.edu"] == ["46", ""]
    assert by_email["ab@example.edu"] == ["0", "no submission"]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("zero", {"ontime": "46", "oneday": "0", "late": "0"}),
        ("none", {"ontime": "46", "oneday": "46", "late": "46"}),
    ],
)
def test_the_other_methods_apply_at_the_next_export(late_class, tmp_path, method, expected):
    root, _ = late_class
    set_policy(root, method)
    mark_manual_cells(root, "full")
    summary = export(root, "canvas", tmp_path)
    assert {s: v for s, v in exported(summary).items() if s != ABSENT} == expected


def test_nbgrader_export_runs_the_same_exporter(late_class, tmp_path):
    root, _ = late_class
    set_policy(root, "percent_per_day")
    mark_manual_cells(root, "full")
    ours = export(root, "canvas", tmp_path)
    target = tmp_path / "via_nbgrader.csv"
    commands.nbgrader(
        root,
        "export",
        "--exporter=convae.review.lms.CanvasExport",
        f"--CanvasExport.roster={tmp_path / 'roster.csv'}",
        f"--CanvasExport.columns=ps1={ASSIGNMENT_COLUMN}",
        f"--to={target}",
    )
    assert read_csv(target) == read_csv(ours.path)


# --- the roster -----------------------------------------------------------------------------------


def cli(root, *argv):
    parser = argparse.ArgumentParser()
    lms.add_arguments(parser)
    return lms.run(root, parser.parse_args(argv))


def test_a_student_missing_from_the_roster_stops_the_export_unless_skipped(late_class, tmp_path, capsys):
    root, _ = late_class
    set_policy(root, "percent_per_day")
    roster = write_roster(tmp_path / "roster.csv", [r for r in ROSTER if r[0] != "late"])
    out = tmp_path / "canvas.csv"
    assert cli(root, "--format", "canvas", "--roster", str(roster), "--out", str(out)) == 1
    said = capsys.readouterr().out
    assert "submissions from students not in" in said and said.count("late") == 1 and not out.exists()

    args = ("--format", "canvas", "--roster", str(roster), "--out", str(out), "--unmatched", "skip")
    assert cli(root, *args) == 0
    assert "not in the roster, left out: late" in capsys.readouterr().out
    assert [r[0] for r in read_csv(out)[2:]] == ["Onn, Tim", 'Day, "One"', "Sent, Ab"]


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        (ROSTER, ROSTER_HEADER[:3] + ROSTER_HEADER[4:], "missing column(s) SIS User ID"),
        ([*ROSTER, ROSTER[0]], ROSTER_HEADER, "ontime appears twice"),
        ([("late", "Late, Lea", "", "", "", "B", "x@y")], ROSTER_HEADER, "late has no ID"),
        ([("late", "Late, Lea", "u1003", "", "", "B", "x@y")], ROSTER_HEADER, "not a Canvas user id"),
        ([(*ROSTER[0][:3], "S9", *ROSTER[0][4:]), ROSTER[1]], ROSTER_HEADER, None),
        ([(*ROSTER[0][:2], "1002", *ROSTER[0][3:]), ROSTER[1]], ROSTER_HEADER, "ID '1002' belongs to both"),
    ],
)
def test_a_canvas_roster_canvas_could_not_match_is_refused(late_class, tmp_path, rows, header, message):
    root, _ = late_class
    roster = write_roster(tmp_path / "roster.csv", rows, header)
    kwargs = {"unmatched": "skip"}
    if message is None:  # control: the same kind of roster, valid
        lms.export_grades(root, "canvas", roster, tmp_path / "ok.csv", **kwargs)
        return
    with pytest.raises(lms.RosterError, match=re.escape(message)):
        lms.export_grades(root, "canvas", roster, tmp_path / "no.csv", **kwargs)
    assert not (tmp_path / "no.csv").exists()


def test_a_moodle_row_without_identifier_is_refused(late_class, tmp_path):
    root, _ = late_class
    rows = [(*ROSTER[0][:6], ""), *ROSTER[1:]]
    with pytest.raises(lms.RosterError, match="ontime has no Email address"):
        lms.export_grades(root, "moodle", write_roster(tmp_path / "r.csv", rows), tmp_path / "m.csv")


def test_a_column_name_canvas_drops_is_refused(late_class, tmp_path):
    root, _ = late_class
    with pytest.raises(lms.ColumnError, match="Final Grade"):
        export(root, "canvas", tmp_path, columns={"ps1": "Final Grade (ps1)"})


def test_command_line_mistakes_are_reported_not_raised(late_class, tmp_path, capsys):
    root, _ = late_class
    with pytest.raises(SystemExit):  # argparse's usage error
        cli(root, "--format", "canvas", "--roster", "roster.csv", "--column", "ps1")
    assert cli(root, "--format", "canvas", "--roster", str(tmp_path / "nowhere.csv")) == 1
    assert "nowhere.csv: no such file; nothing was written" in capsys.readouterr().out
    assert cli(tmp_path, "--format", "canvas", "--roster", "roster.csv") == 1
    assert "is not a course folder" in capsys.readouterr().out
