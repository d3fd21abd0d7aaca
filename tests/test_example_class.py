"""End to end: the bundled example class through the real nbgrader gives the expected grades."""

import csv

from conftest import REPO

from convae import course, notebooks


def read_expected():
    with open(REPO / "examples" / "expected_grades.csv") as f:
        return [row for row in csv.DictReader(f)]


def test_notebook_grades_equal_the_expected_table(graded_course):
    with open(graded_course / "autograded" / "notebook_grades.csv") as f:
        got = list(csv.DictReader(f))
    assert got == read_expected()


def test_nbgrader_export_has_every_student_and_assignment(graded_course):
    with open(graded_course / "autograded" / "grades.csv") as f:
        rows = list(csv.DictReader(f))
    students = set(course.load_example_class(REPO))
    pairs = {(r["student_id"], r["assignment"]) for r in rows}
    assert pairs == {(s, a) for s in students for a in course.assignments(REPO)}


def test_complete_student_earns_every_autograded_point(graded_course):
    """Every source notebook executes in grading mode and each test cell earns full points."""
    from nbgrader.api import Gradebook

    with Gradebook(course.gradebook_url(graded_course)) as gb:
        for assignment in course.assignments(REPO):
            for nb in gb.find_submission(assignment, "example-complete").notebooks:
                for grade in nb.grades:
                    if grade.auto_score is not None:
                        assert grade.auto_score == grade.max_score, f"{nb.name}:{grade.name}"


def test_blank_student_scores_zero_everywhere(graded_course):
    rows = [r for r in read_expected() if r["student"] == "example-blank"]
    assert rows and all(float(r["score"]) == 0 for r in rows)


def test_feedback_exists_for_every_graded_notebook(graded_course):
    for path in (graded_course / "autograded").glob("*/*/*.ipynb"):
        student, assignment = path.parts[-3], path.parts[-2]
        html = graded_course / "feedback" / student / assignment / f"{path.stem}.html"
        assert html.exists(), html
        assert notebooks.read(path).cells, path
