"""The item analysis (``convae.review.items``) on classes graded by the real pipeline.

A planted class: 30 students on a course cut down to ps1/conv_arithmetic, whose answers are the
validity catalogue's mistakes in known numbers (two students hand nothing in, every hand-in gets
``conv_transpose2d_output_size`` wrong, nobody gets ``dense_param_count`` wrong). What each
answer must score and say is worked out independently, by judging it with the validity harness
(the judge in this process, no nbgrader); the tool's counts must equal the planted counts
exactly. The example class (``graded_course``) gives the counts ``examples/example_class.py``
implies, and the scores of ``examples/expected_grades.csv``.
"""

import argparse
import base64
import csv
import functools
import importlib
import re
import shutil
import zlib
from collections import Counter

import pytest
from conftest import REPO, copy_course, release_course
from validity_harness import judge_in_student_process

from convae import course, notebooks
from convae.grading import pipeline, sandbox
from convae.review import items

NOTEBOOK = "conv_arithmetic"
CATALOGUE = importlib.import_module("validity.ps1_conv_arithmetic").catalogue
STUB = "stub"
HOSTILE_TEXT = '<script>alert("planted")</script>'
HOSTILE = f"""
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    raise ValueError({HOSTILE_TEXT!r})
"""


def float_answer(offset: int) -> str:
    """The catalogue's "returns a float" mistake, with decimals that differ per student (and that the
    visible 3x3 check, which compares with ==, does not see)."""
    return f"""
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    count = out_channels * (in_channels * k_h * k_w + int(bias))
    return count + (0.0 if kernel_size == 3 else {offset} / 8)
"""


def mistake(name: str, label: str) -> str:
    [variant] = [v for v in CATALOGUE.wrong_variants if v.name == name and v.label == label]
    return variant.source


# What the 28 students who hand the notebook in answer, per function, in student order.
PLANTED = {
    "dense_param_count": [(course.SOLUTION, 28)],
    "conv2d_param_count": [
        (mistake("conv2d_param_count", "forgets in_channels"), 5),
        *[(float_answer(offset), 1) for offset in range(1, 5)],
        (HOSTILE, 1),
        (STUB, 2),
        (course.SOLUTION, 16),
    ],
    "conv2d_output_size": [
        (mistake("conv2d_output_size", "ceil instead of floor"), 9),
        (mistake("conv2d_output_size", "ignores dilation"), 4),
        (course.SOLUTION, 15),
    ],
    "conv_transpose2d_output_size": [
        (mistake("conv_transpose2d_output_size", "ignores output_padding"), 18),
        (mistake("conv_transpose2d_output_size", "ignores dilation"), 10),
    ],
}
HANDED_IN, NOT_HANDED_IN = 28, 2


def planted_answers() -> dict[str, dict | str]:
    """student -> their conv_arithmetic answers (``"missing"``: not handed in)."""
    columns = {name: [answer for answer, n in plan for _ in range(n)] for name, plan in PLANTED.items()}
    assert all(len(column) == HANDED_IN for column in columns.values())
    students = {}
    for index in range(HANDED_IN):
        students[f"student-{index:02d}"] = {
            name: column[index] for name, column in columns.items() if column[index] != STUB
        }
    for index in range(HANDED_IN, HANDED_IN + NOT_HANDED_IN):
        students[f"student-{index:02d}"] = "missing"
    return students


@functools.cache
def judged(test_id: str, name: str, answer: str):
    """The judge's verdict on one answer, as grading would write it (the validity harness's way)."""
    cells = CATALOGUE.cells()
    source = CATALOGUE.cells(release=True)[name].source if answer == STUB else answer
    verdict, _ = judge_in_student_process(
        CATALOGUE.student_cells({name: source}),
        cells["imports"].source,
        CATALOGUE.answer_ids(),
        test_id,
        cells[test_id].source,
        zlib.crc32(test_id.encode()),
    )
    return verdict


def expected_analysis():
    """From the plan and the harness: per check (passed, failed, unanswered), failure groups
    {(check, ename, normalised message): (students, distinct messages)}, and every score."""
    points = {
        notebooks.grade_id(c): notebooks.nbgrader_meta(c)["points"]
        for c in notebooks.read(CATALOGUE.source_path).cells
        if notebooks.is_test_cell(c)
    }
    counts, groups = {}, {}
    for name, test_ids in CATALOGUE.tests.items():
        for test_id in test_ids:
            tally = Counter()
            for answer, n in PLANTED[name]:
                verdict = None if answer == course.SOLUTION else judged(test_id, name, answer)
                if verdict is None or verdict.passed:
                    tally["passed"] += n
                elif (verdict.ename, verdict.evalue) == ("NotImplementedError", ""):
                    tally["unanswered"] += n
                else:
                    tally["failed"] += n
                    key = (test_id, verdict.ename, items.normalise_message(verdict.evalue))
                    students, messages = groups.get(key, (0, set()))
                    groups[key] = (students + n, messages | {verdict.evalue})
            counts[test_id] = (tally["passed"], tally["failed"], tally["unanswered"])
    return counts, {k: (n, len(m)) for k, (n, m) in groups.items()}, points


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_items(root, *argv) -> int:
    parser = argparse.ArgumentParser()
    items.add_arguments(parser)
    return items.run(root, parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def expected():
    return expected_analysis()


@pytest.fixture(scope="module")
def planted_class(tmp_path_factory, expected):
    """The planted class, graded and analysed (default output folder). ``expected`` first: it
    reads ``source/`` from the repository, the class grades a copy made just after."""
    root = copy_course(tmp_path_factory.mktemp("items"))
    for assignment in ("ps2", "ps3"):
        shutil.rmtree(root / "source" / assignment)
    for path in (root / "source" / "ps1").glob("*.ipynb"):
        if path.stem != NOTEBOOK:
            path.unlink()
    release_course(root)
    for student, answers in planted_answers().items():
        course.build_submission(root, student, {f"ps1/{NOTEBOOK}": answers}, "ps1")
    results = pipeline.grade_class(
        pipeline.Settings(root, sandbox=sandbox.probe() is None), jobs=2, progress=False
    )
    assert [r.student for r in results if not r.ok] == []
    assert run_items(root) == 0
    return root


def test_pass_counts_equal_the_planted_counts(planted_class, expected):
    counts, _, _ = expected
    rows = read_csv(planted_class / "reports" / "items" / "ps1_checks.csv")
    assert [r["grade_id"] for r in rows] == CATALOGUE.test_ids()  # notebook order
    for row in rows:
        passed, failed, unanswered = counts[row["grade_id"]]
        assert (row["class_size"], row["handed_in"]) == ("30", str(HANDED_IN))
        got = (int(row["passed"]), int(row["failed"]), int(row["unanswered"]), int(row["partial"]))
        assert got == (passed, failed, unanswered, 0), row["grade_id"]
        assert float(row["pass_rate"]) == pytest.approx(passed / HANDED_IN, abs=1e-4)
    # The plan's headline numbers, stated outright in case the harness and the tool agree on a bug.
    by_id = {r["grade_id"]: r for r in rows}
    assert by_id["test_conv2d_output_size"]["passed"] == "15"
    assert by_id["test_conv2d_param_count"]["unanswered"] == "2"


def test_flags_mark_the_check_nobody_passes_and_those_everybody_passes(planted_class):
    rows = read_csv(planted_class / "reports" / "items" / "ps1_checks.csv")
    flags = {r["grade_id"]: r["flag"] for r in rows if r["flag"]}
    assert flags == {
        "test_conv_transpose2d_output_size": "nobody passed",
        "test_dense_param_count": "everybody passed",
    }
    page = (planted_class / "reports" / "items" / "ps1.html").read_text()
    assert "nobody passed" in page and "everybody passed" in page
    assert f"0 of {HANDED_IN}" in page and f"{HANDED_IN} of {HANDED_IN}" in page


def test_failure_messages_are_grouped_with_the_planted_counts(planted_class, expected):
    _, groups, _ = expected
    rows = read_csv(planted_class / "reports" / "items" / "ps1_failures.csv")
    got = {
        (r["grade_id"], r["error_type"], r["message"]): (int(r["students"]), int(r["distinct_messages"]))
        for r in rows
    }
    assert got == groups
    top = {}
    for r in rows:  # most frequent first
        top.setdefault(r["grade_id"], r)
    assert top["test_conv2d_output_size"]["students"] == "9"
    assert top["test_conv_transpose2d_output_size"]["students"] == "18"
    assert float(top["test_conv_transpose2d_output_size"]["share_of_handed_in"]) == pytest.approx(
        18 / 28, abs=1e-4
    )


def test_decimal_numbers_a_student_produced_are_grouped(planted_class):
    """Four students return floats that differ in the decimals: one group, four messages."""
    rows = read_csv(planted_class / "reports" / "items" / "ps1_failures.csv")
    [floats] = [
        r for r in rows if r["grade_id"] == "test_conv2d_param_count" and "float <number>" in r["message"]
    ]
    assert (floats["students"], floats["distinct_messages"]) == ("4", "4")
    assert re.search(r"got float \d+\.\d+$", floats["example_message"])


def test_scores_and_missing_notebooks(planted_class, expected):
    _, _, points = expected
    results = items.load_results(planted_class, "ps1")
    missing = {o.student for o in results.outcomes if o.status is items.Status.MISSING}
    assert missing == {"student-28", "student-29"}
    # Each planted answer's score: the points of the checks it passes (the markdown answer is a stub).
    want = []
    for student, answers in planted_answers().items():
        if answers == "missing":
            continue
        index = int(student.split("-")[1])
        score = 0
        for name, test_ids in CATALOGUE.tests.items():
            answer = [a for a, n in PLANTED[name] for _ in range(n)][index]
            for test_id in test_ids:
                if answer == course.SOLUTION or judged(test_id, name, answer).passed:
                    score += points[test_id]
        want.append(score)
    assert sorted(results.scores[NOTEBOOK]) == sorted(want)


def test_page_embeds_its_figures_and_escapes_a_students_text(planted_class):
    page = (planted_class / "reports" / "items" / "ps1.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2  # the notebook's pass-rate chart and score histogram
    assert all(base64.b64decode(image).startswith(b"\x89PNG\r\n\x1a\n") for image in images)
    assert HOSTILE_TEXT not in page and "<script" not in page
    assert "&lt;script&gt;alert(&#34;planted&#34;)&lt;/script&gt;" in page


def test_output_folder_option_and_unknown_assignment(planted_class, tmp_path):
    assert run_items(planted_class, "--assignment", "ps1", "--out", str(tmp_path), "--top", "1") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ps1.html", "ps1_checks.csv", "ps1_failures.csv"]
    page = (tmp_path / "ps1.html").read_text()
    assert "1 more in the CSV" in page  # --top 1 leaves groups out of the page
    assert run_items(planted_class, "--assignment", "ps9", "--out", str(tmp_path)) == 1


def test_normalise_message():
    assert items.normalise_message("KL should be 0, got 0.513") == "KL should be 0, got <number>"
    assert items.normalise_message("got [0.1, -2.5e-3, 3.0]") == "got [<numbers>]"
    assert items.normalise_message("conv2d(28, 3) returned 27, PyTorch gives 26") == (
        "conv2d(28, 3) returned 27, PyTorch gives 26"
    )
    assert items.normalise_message("float64 at 0x7f3a2b1c") == "float64 at 0x..."


# --- the example class ------------------------------------------------------------------------

# ps1/conv_arithmetic in examples/example_class.py: complete answers everything, partial answers
# dense_param_count and conv2d_param_count, wrong makes one catalogued mistake per function,
# blank leaves every stub. (passed, failed, unanswered) per check:
EXAMPLE_CONV_ARITHMETIC = {
    "test_dense_param_count": (2, 1, 1),
    "test_conv2d_param_count": (2, 1, 1),
    "test_conv2d_output_size": (1, 1, 2),
    "test_conv_transpose2d_output_size": (1, 1, 2),
}


def test_example_class(graded_course, tmp_path):
    assert run_items(graded_course, "--out", str(tmp_path)) == 0
    expected_scores = {}
    for row in read_csv(REPO / "examples" / "expected_grades.csv"):
        expected_scores.setdefault((row["assignment"], row["notebook"]), []).append(float(row["score"]))
    for assignment in course.assignments(REPO):
        rows = read_csv(tmp_path / f"{assignment}_checks.csv")
        assert rows
        for row in rows:
            got = (int(row["passed"]), int(row["failed"]), int(row["unanswered"]))
            # Outside conv_arithmetic only the complete student answers: one pass, three stubs.
            want = EXAMPLE_CONV_ARITHMETIC[row["grade_id"]] if row["notebook"] == NOTEBOOK else (1, 0, 3)
            assert got == want, f"{row['notebook']}:{row['grade_id']}"
            assert (row["class_size"], row["handed_in"]) == ("4", "4")
            assert row["flag"] == ""
        results = items.load_results(graded_course, assignment)
        for notebook, scores in results.scores.items():
            assert sorted(scores) == sorted(expected_scores[(assignment, notebook)]), notebook
    failures = read_csv(tmp_path / "ps1_failures.csv")
    assert {r["grade_id"] for r in failures} == set(EXAMPLE_CONV_ARITHMETIC)
    assert all(r["students"] == "1" and r["error_type"] == "AssertionError" for r in failures)
