"""Marking sheets and the import of manual marks, end to end on the graded example class.

The example class is graded once (``graded_course``); this file adds a student whose written
answer attacks the grader's browser, grades them for real, and works on copies of that course.
The browser tests drive the system's Chromium (skipped where there is none).
"""

import argparse
import base64
import csv
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import Chromium, wait_until
from conftest import REPO
from nbgrader.api import Gradebook

from convae import course, notebooks
from convae.grading import commands, pipeline
from convae.leaks import source_secrets
from convae.review import marking

ASSIGNMENT, NOTEBOOK, QUESTION = "ps1", "conv_arithmetic", "large_inputs_answer"
SHEET = f"{ASSIGNMENT}__{NOTEBOOK}__{QUESTION}"
CELL = f"{ASSIGNMENT}/{NOTEBOOK}/{QUESTION}"
HOSTILE = "example-hostile"
NO_SUBMISSION = "example-no-submission"
# A 1x1 red PNG, pasted into the answer cell as Jupyter does (a cell attachment).
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
        "0000000c4944415408d763f8cfc000000301010018dd8db00000000049454e44ae426082"
    )
).decode()
HOSTILE_ANSWER = r"""The count grows like $n^4$: $224^2 \cdot 3 \cdot 224^2 \cdot 20 \approx 10^{11}$.

$$\begin{aligned} a &= b \\ c &= \log d \end{aligned}$$

<script>window.pwned = "script tag"</script>
<img src="x" onerror="window.pwned = 'img onerror'">
$\text{<img src=x onerror=window.pwned=1>}$ and $\href{javascript:window.pwned=2}{click}$
[a link](javascript:window.pwned=3) and a broken formula $x^$
![remote](http://127.0.0.1:9/tracker.png) ![my diagram](attachment:diagram.png)
"""


def hand_in(root: Path, student: str, answer: str) -> None:
    """``student`` hands in ps1 with ``answer`` (and a pasted image) as the written answer."""
    course.build_submission(root, student, {f"{ASSIGNMENT}/{NOTEBOOK}": {QUESTION: answer}}, ASSIGNMENT)
    path = root / "submitted" / student / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    nb = notebooks.read(path)
    notebooks.cells_by_id(nb)[QUESTION]["attachments"] = {"diagram.png": {"image/png": PIXEL}}
    notebooks.write(nb, path)


@pytest.fixture(scope="module")
def prepared(graded_course, tmp_path_factory):
    """The graded example class plus a hostile student (graded) and a student with no submission."""
    root = tmp_path_factory.mktemp("marking") / "course"
    shutil.copytree(graded_course, root)
    hand_in(root, HOSTILE, HOSTILE_ANSWER)
    enabled, _ = pipeline.sandbox_setting("auto")
    results = pipeline.grade_class(
        pipeline.Settings(root, sandbox=enabled), students=[HOSTILE], assignments=[ASSIGNMENT], progress=False
    )
    assert [r.ok for r in results] == [True], [r.flags for r in results]
    with Gradebook(commands.gradebook_url(root)) as gradebook:
        gradebook.update_or_create_student(NO_SUBMISSION)
    return root


@pytest.fixture
def course_copy(prepared, tmp_path):
    """A copy to import marks into, so that no test sees another's marks."""
    root = tmp_path / "course"
    shutil.copytree(prepared, root)
    return root


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=marking.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def manual_state(root: Path) -> dict:
    """Every manually graded cell's (manual score, needs manual grade, comment), per student."""
    state = {}
    with Gradebook(commands.gradebook_url(root)) as gradebook:
        for question in marking.manual_questions(root, gradebook):
            for answer in marking.student_answers(root, gradebook, question):
                key = (question.grade_id, answer.student)
                state[key] = (answer.manual_score, answer.needs_manual_grade, answer.comment)
    return state


def exported_scores(root: Path, path: Path) -> dict:
    """``nbgrader export``'s score per (student, assignment)."""
    course.export_grades(root, path)
    return {(r["student_id"], r["assignment"]): float(r["score"]) for r in read_csv(path)}


def import_cli(root: Path, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    marking.add_import_arguments(parser)
    return marking.run_import(root, parser.parse_args(list(argv)))


class Tags(HTMLParser):
    """Every start tag of a page with its attributes, as a browser's tokenizer sees them."""

    def __init__(self, text: str):
        super().__init__()
        self.tags = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


# --- the sheets --------------------------------------------------------------------------------


def test_sheets_put_the_mark_scheme_beside_every_answer(prepared, capsys):
    parser = argparse.ArgumentParser()
    marking.add_arguments(parser)
    assert marking.run(prepared, parser.parse_args([])) == 0
    out = prepared / "reports" / "marking"
    assert str(out / "index.html") in capsys.readouterr().out

    source = notebooks.read(REPO / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb")
    expected = sorted(
        f"{p.parent.name}__{p.stem}__{notebooks.grade_id(c)}"
        for p in (REPO / "source").glob("*/*.ipynb")
        for c in notebooks.read(p).cells
        if notebooks.is_manual_answer(c)
    )
    assert sorted(p.stem for p in out.glob("*.html") if p.stem != "index") == expected
    assert sorted(p.stem for p in out.glob("*.csv")) == expected
    index = (out / "index.html").read_text()
    assert all(f'href="{stem}.html"' in index for stem in expected)

    page = (out / f"{SHEET}.html").read_text()
    model = notebooks.cells_by_id(source)[QUESTION].source
    assert "What goes wrong when a dense layer is used on large" in page  # the question
    assert "about 600 GB in float32" in model and "No point for" in model
    # The model answer twice (instructor's column, and the student who handed it in), the mark
    # scheme once: no student's answer carries it.
    assert page.count("about 600 GB in float32") == 2 and page.count("No point for") == 1
    assert "Too many parameters: the weight matrix grows with the image." in page
    cards = {attrs["data-student"]: attrs["class"] for tag, attrs in Tags(page).tags if tag == "article"}
    assert cards == {
        "example-blank": "answer unanswered",
        "example-complete": "answer to-mark",
        "example-partial": "answer to-mark",
        "example-wrong": "answer unanswered",
        HOSTILE: "answer to-mark",
    }
    inputs = [attrs for tag, attrs in Tags(page).tags if tag == "input"]
    assert len(inputs) == 5 and all(a["max"] == "2" and a["min"] == "0" for a in inputs)

    template = read_csv(out / f"{SHEET}.csv")
    assert [r["student"] for r in template] == sorted(cards)
    assert {
        (r["assignment"], r["notebook"], r["grade_id"], r["max_points"], r["points"]) for r in template
    } == {(ASSIGNMENT, NOTEBOOK, QUESTION, "2", "")}
    for stem in expected:  # every formula of every question, model answer and mark scheme converts
        instructor = (out / f"{stem}.html").read_text().split("<aside>")[1].split("</aside>")[0]
        assert "tex-source" not in instructor, stem


def test_a_hostile_answer_is_shown_as_text(prepared, tmp_path):
    marking.write_sheets(prepared, tmp_path, assignments=[ASSIGNMENT])
    assert sorted(p.stem.split("__")[0] for p in tmp_path.glob("*__*.html")) == [ASSIGNMENT] * 4
    page = (tmp_path / f"{SHEET}.html").read_text()
    tags = Tags(page).tags
    assert [tag for tag, _ in tags].count("script") == 1  # the sheet's own
    assert not [(tag, name) for tag, attrs in tags for name in attrs if name.startswith("on")]
    assert not [a for tag, a in tags if a.get("href", "").lower().startswith("javascript")]
    # Only the pasted image is shown (grading kept only the cell's text: read from submitted/).
    assert [a["src"] for tag, a in tags if tag == "img"] == [f"data:image/png;base64,{PIXEL}"]
    assert "&lt;script&gt;window.pwned" in page and "onerror=&quot;window.pwned" in page
    assert "[image remote: http://127.0.0.1:9/tracker.png]" in page
    assert ">$x^$</code>" in page  # broken LaTeX: shown as written
    assert "$\\text{&lt;img src=x onerror=window.pwned=1&gt;}$</code>" in page
    assert "<mtable" in page and "<mn>224</mn>" in page  # the valid formulas render


# --- the import --------------------------------------------------------------------------------


def test_import_sets_manual_points_seen_by_export_and_feedback(course_copy):
    root = course_copy
    before = exported_scores(root, root / "before.csv")
    marking.write_sheets(root)
    template = root / "reports" / "marking" / f"{SHEET}.csv"
    rows = read_csv(template)
    comments = {
        "example-complete": "Full marks: the n^4 growth, two consequences, and the contrast.",
        "example-partial": 'Half a point: say *why* ("the weights grow like $n^4$").',
    }
    for row in rows:
        if row["student"] == "example-complete":
            row.update(points="2", comment=comments["example-complete"])
        elif row["student"] == "example-partial":
            row.update(points="0.5", comment=comments["example-partial"])
    write_csv(template, rows)

    assert import_cli(root, str(template)) == 0

    after = exported_scores(root, root / "after.csv")
    changed = {key: after[key] - before[key] for key in before if after[key] != before[key]}
    assert changed == {("example-complete", "ps1"): 2.0, ("example-partial", "ps1"): 0.5}
    state = manual_state(root)
    assert state[(QUESTION, "example-complete")] == (2.0, False, comments["example-complete"])
    assert state[(QUESTION, "example-partial")] == (0.5, False, comments["example-partial"])
    assert state[(QUESTION, HOSTILE)] == (None, True, None)  # blank row: left as it was

    secrets = set().union(
        *(source_secrets(p, kinds=("hidden", "mark_scheme")) for p in (REPO / "source").glob("*/*.ipynb"))
    )
    for student, score in (("example-complete", "2.0"), ("example-partial", "0.5")):
        feedback = (root / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
        assert f"Written response</a> (Score: {score} / 2.0)" in feedback
        assert (
            "the n^4 growth" in feedback if student == "example-complete" else "say <em>why</em>" in feedback
        )
        assert "BEGIN HIDDEN TESTS" not in feedback and not [s for s in secrets if s in feedback]

    marking.write_sheets(root)  # the next sheet starts from the imported marks
    prefilled = {r["student"]: (r["points"], r["comment"]) for r in read_csv(template)}
    assert prefilled["example-partial"] == ("0.5", comments["example-partial"])
    page = (root / "reports" / "marking" / f"{SHEET}.html").read_text()
    assert 'value="0.5"' in page and "say *why* (&quot;the weights" in page


def canvas_ps1(path: Path) -> dict:
    """The ps1 column of a Canvas import file, per SIS Login ID (the student rows only)."""
    rows = read_csv(path)
    return {r["SIS Login ID"]: r["ps1"] for r in rows if r["Student"] != "Points Possible"}


def test_import_marks_refreshes_the_lms_export_made_before(course_copy, capsys):
    from convae.__main__ import main

    root = course_copy
    with Gradebook(commands.gradebook_url(root)) as gradebook:
        students = sorted(s.id for s in gradebook.students)
    roster = root / "roster.csv"
    with open(roster, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "nbgrader_id"])
        writer.writerows([s, 100 + i, "", s, "A", s] for i, s in enumerate(students))
    export = ["--root", str(root), "export-lms", "--format", "canvas", "--roster", str(roster)]
    assert main([*export, "--pending", "partial"]) == 0
    canvas = root / "reports" / "lms" / "canvas.csv"
    before = canvas_ps1(canvas)

    marking.write_sheets(root)
    template = root / "reports" / "marking" / f"{SHEET}.csv"
    rows = read_csv(template)
    for row in rows:
        if row["student"] == "example-complete":
            row.update(points="2", comment="Full marks.")
    write_csv(template, rows)
    assert main(["--root", str(root), "import-marks", str(template), "--no-feedback"]) == 0
    assert f"canvas grades exported again: {canvas}" in capsys.readouterr().out

    after = canvas_ps1(canvas)
    changed = {s: float(after[s]) - float(before[s]) for s in before if after[s] != before[s]}
    assert changed == {"example-complete": 2.0}, (before, after)


def test_bad_rows_are_all_named_and_nothing_is_imported(course_copy, capsys):
    root = course_copy
    feedback = root / "feedback" / "example-complete" / ASSIGNMENT / f"{NOTEBOOK}.html"
    feedback_before, state_before = feedback.read_bytes(), manual_state(root)

    def row(student="example-complete", points="1", **changes):
        values = dict(assignment=ASSIGNMENT, notebook=NOTEBOOK, grade_id=QUESTION, max_points="2")
        return {**values, "student": student, "points": points, "comment": "ok", **changes}

    rows = [
        row(),  # line 2: fine, but must not be imported either
        row("example-partial", points="3"),
        row("example-wrong", points="-1"),
        row(HOSTILE, points="1,5"),
        row("example-blank", points="inf"),
        row("nobody"),
        row(assignment="ps9"),
        row(notebook="no_such_notebook"),
        row(grade_id="no_such_cell"),
        row(grade_id="test_dense_param_count", max_points="2"),
        row(NO_SUBMISSION),
        row(HOSTILE, max_points="3"),  # (line 5 was not a mark: no duplicate)
        row(points="2"),  # line 14: the same as line 2
    ]
    path = write_csv(root / "marks.csv", rows)
    other = root / "other.csv"
    other.write_text("student,points\nexample-blank,1\n")
    latin1 = root / "latin1.csv"
    latin1.write_bytes(",".join(marking.COLUMNS).encode() + "\nps1,,,Zoë\n".encode("latin-1"))

    assert import_cli(root, str(path), str(other), str(latin1)) == 1
    printed = capsys.readouterr().out
    nb = f"{ASSIGNMENT}/{NOTEBOOK}"
    expected = [
        f"marks.csv line 3 (example-partial, {CELL}): points 3 are outside 0 to 2",
        f"marks.csv line 4 (example-wrong, {CELL}): points -1 are outside 0 to 2",
        "marks.csv line 5: points '1,5' is not a number (use a dot for decimals)",
        "marks.csv line 6: points 'inf' is not a number",
        f"marks.csv line 7 (nobody, {CELL}): unknown student 'nobody'",
        f"marks.csv line 8 (example-complete, ps9/{NOTEBOOK}/{QUESTION}): unknown assignment 'ps9'",
        f"marks.csv line 9 (example-complete, ps1/no_such_notebook/{QUESTION}): unknown notebook",
        f"marks.csv line 10 (example-complete, {nb}/no_such_cell): no graded cell 'no_such_cell'",
        f"marks.csv line 11 (example-complete, {nb}/test_dense_param_count): "
        "'test_dense_param_count' is graded by its tests, not by hand",
        f"marks.csv line 12 ({NO_SUBMISSION}, {CELL}): "
        f"{NO_SUBMISSION} has no autograded submission of {nb} yet",
        f"marks.csv line 13 ({HOSTILE}, {CELL}): max_points 3 is not the cell's 2: the sheet is out of date",
        f"marks.csv line 14 (example-complete, {CELL}): the same student and question as marks.csv line 2",
        "other.csv: missing column(s) assignment, notebook, grade_id, comment",
        f"{latin1}: cannot be read as a UTF-8 CSV file",
    ]
    for message in expected:
        assert message in printed, message
    assert f"{len(expected)} problem(s): nothing was imported" in printed
    assert manual_state(root) == state_before and feedback.read_bytes() == feedback_before
    with pytest.raises(marking.MarkImportError) as error:
        marking.import_marks(root, path)
    assert len(error.value.errors) == len(expected) - 2  # only marks.csv's problems


def test_a_failure_while_writing_rolls_every_mark_back(course_copy, monkeypatch):
    root = course_copy
    state_before = manual_state(root)
    path = write_csv(
        root / "marks.csv",
        [
            dict(
                zip(marking.COLUMNS, (ASSIGNMENT, NOTEBOOK, QUESTION, student, "2", "1", "fine"), strict=True)
            )
            for student in ("example-complete", "example-partial")
        ],
    )
    original, calls = marking.apply_mark, []

    def fail_on_second(gradebook, mark):
        calls.append(mark.student)
        if len(calls) == 2:
            raise OSError("disk full")
        original(gradebook, mark)

    monkeypatch.setattr(marking, "apply_mark", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        marking.import_marks(root, path)
    assert calls == ["example-complete", "example-partial"]
    assert manual_state(root) == state_before


# --- the sheet in a real browser -----------------------------------------------------------------

needs_chromium = pytest.mark.system("chromium")


@pytest.fixture
def browser(tmp_path):
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    chromium = Chromium(downloads)
    chromium.downloads = downloads
    yield chromium
    chromium.close()


def fill(student: str, points: str, comment: str) -> str:
    """JavaScript that types ``points`` and ``comment`` into ``student``'s boxes, as a grader would."""
    card = f"document.querySelector('.answer[data-student={json.dumps(student)}]')"
    return (
        f"(function () {{ var card = {card};"
        f" card.querySelector('input.points').value = {json.dumps(points)};"
        f" card.querySelector('textarea.comment').value = {json.dumps(comment)};"
        " card.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )


@needs_chromium
def test_the_hostile_answer_runs_nothing_in_a_browser(prepared, tmp_path, browser):
    marking.write_sheets(prepared, tmp_path)
    browser.open(tmp_path / f"{SHEET}.html")
    assert browser.evaluate("typeof window.pwned") == "undefined"
    assert browser.evaluate("document.scripts.length") == 1
    card = f"document.querySelector('.answer[data-student=\"{HOSTILE}\"]')"
    assert browser.evaluate(f"{card}.querySelectorAll('math').length") == 4
    assert "<script>window.pwned" in browser.evaluate(f"{card}.querySelector('.text').textContent")
    # The sheet's own script ran (the page's policy allows it by its hash).
    assert browser.evaluate("document.getElementById('progress').textContent") == "2 of 5 have points"


@needs_chromium
def test_the_form_downloads_a_csv_that_imports(course_copy, browser):
    root = course_copy
    marking.write_sheets(root)
    browser.open(root / "reports" / "marking" / f"{SHEET}.html")
    comment = 'Très bien, "n^4" — but:\nname a second consequence.'
    browser.evaluate(fill("example-partial", "1.5", comment))
    browser.evaluate(fill(HOSTILE, "5", ""))
    browser.evaluate("document.getElementById('download').click()")
    assert browser.evaluate("document.getElementById('status').textContent") == (
        f"Not downloaded: points must be numbers from 0 to 2 (check {HOSTILE})."
    )
    assert not list(browser.downloads.iterdir())

    browser.evaluate(fill(HOSTILE, "0", "Answer the question, please."))
    browser.evaluate("document.getElementById('download').click()")
    downloaded = wait_until(lambda: list(browser.downloads.glob("*.csv")))
    assert [p.name for p in downloaded] == [f"{SHEET}.csv"]
    assert browser.evaluate("document.getElementById('progress').textContent") == "4 of 5 have points"

    assert marking.import_marks(root, downloaded[0], feedback=False) == [
        (HOSTILE, ASSIGNMENT),
        ("example-partial", ASSIGNMENT),
    ]
    state = manual_state(root)
    assert state[(QUESTION, "example-partial")] == (1.5, False, comment)
    assert state[(QUESTION, HOSTILE)] == (0.0, False, "Answer the question, please.")
    assert state[(QUESTION, "example-complete")] == (None, True, None)
