"""Item analysis: how the class did on each graded check of an assignment.

``python -m convae items`` writes, for each assignment, ``reports/items/<assignment>.html`` (one
self-contained page: figures embedded as PNG) and two CSV files:

- ``<assignment>_checks.csv``: per autograded check (a graded test cell), in notebook order, how
  many students handed the notebook in, left the answer as the release's stub, passed, got partial
  credit or failed, the pass rate, and a flag: ``nobody passed`` (some students answered, none
  passed: a broken test, or a gap in the teaching?), ``everybody passed`` (every student who
  handed the notebook in passed: the check tells the course team nothing), ``nobody answered``;
- ``<assignment>_failures.csv``: per check, each distinct failure message and how many students
  got it. The hidden tests' messages name the mistake, so this is a table of misconceptions.

How students are counted, per notebook:
- the class is every student in the gradebook; a student with no graded submission of the
  assignment, or whose ``submitted/`` folder lacks the notebook (the grader then grades the
  release's stubs), did not hand it in, and counts in none of the columns below;
- ``passed``: the check's full points (nbgrader's automatic score: a grader's manual override of
  a check is not what the test said, and is ignored here);
- ``unanswered``: the check failed with the release stub's bare ``NotImplementedError``;
- ``partial``: some but not all points (a hidden test that prints a score; not used in this course);
- ``failed``: no points, with the judge's message (or none);
- pass rate and shares: of the students who handed the notebook in.

Failure messages are read from ``autograded/<student>/<assignment>/<notebook>.ipynb``, where a
graded test cell holds only the judge's verdict: no output, or one error whose ``evalue`` is the
message. Messages are grouped after replacing what differs between students who made the same
mistake: decimal numbers (``got 0.513`` becomes ``got <number>``, a list of them ``<numbers>``)
and memory addresses. Integers stay: they are call arguments, shapes, sizes and counts, and an
integer the student's code returns is the same for everyone with that mistake. The tables show
one real message per group.

Nothing here runs student code: the tool reads the gradebook and parses notebook JSON. A message
can carry a student's own text (an exception their code raised), so every string is escaped in
the page.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import jinja2
import nbformat
from matplotlib.figure import Figure

from convae import notebooks
from convae.grading.commands import environment_bin_on_path, gradebook_url

TOP_FAILURES = 5  # messages shown per check in the page (the CSV has them all)
TOP_OVERALL = 10  # rows of the assignment-wide table of frequent failures
STUB_ERROR = "NotImplementedError"  # what the release's code stub raises


class Status(StrEnum):
    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    UNANSWERED = "unanswered"
    MISSING = "not handed in"


@dataclass(frozen=True)
class Check:
    notebook: str
    grade_id: str
    max_points: float


@dataclass(frozen=True)
class Outcome:
    """One student's result on one check."""

    student: str
    check: Check
    status: Status
    ename: str = ""
    evalue: str = ""


@dataclass
class AssignmentResults:
    """Everything the analysis reads for one assignment."""

    assignment: str
    students: list[str]
    checks: list[Check]  # in notebook order
    outcomes: list[Outcome]
    notebooks: list[str] = field(default_factory=list)
    max_scores: dict[str, float] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)  # of the students who handed it in
    pending: Counter = field(default_factory=Counter)  # notebook -> submissions awaiting manual marks


@dataclass(frozen=True)
class CheckSummary:
    check: Check
    class_size: int
    handed_in: int
    unanswered: int
    passed: int
    partial: int
    failed: int

    @property
    def attempted(self) -> int:
        return self.handed_in - self.unanswered

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.handed_in if self.handed_in else None

    @property
    def flag(self) -> str:
        if not self.handed_in:
            return ""
        if not self.attempted:
            return "nobody answered"
        if not self.passed:
            return "nobody passed"
        if self.passed == self.handed_in:
            return "everybody passed"
        return ""


@dataclass
class FailureGroup:
    """Students who failed one check with the same (normalised) message."""

    check: Check
    ename: str
    message: str  # normalised
    handed_in: int
    variants: Counter = field(default_factory=Counter)  # the messages as written -> students

    @property
    def students(self) -> int:
        return sum(self.variants.values())

    @property
    def share(self) -> float:
        return self.students / self.handed_in if self.handed_in else 0.0

    @property
    def example(self) -> str:
        return self.variants.most_common(1)[0][0]


# --- messages ---------------------------------------------------------------------------------

ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
DECIMAL = re.compile(
    r"(?<![\w.])[-+]?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)(?![\w.])"
)
NUMBER_RUN = re.compile(r"<number>(?:,\s*<number>)+")


def normalise_message(text: str) -> str:
    """A message with what varies between students who made the same mistake replaced."""
    text = ADDRESS.sub("0x...", text)
    text = DECIMAL.sub("<number>", text)
    return NUMBER_RUN.sub("<numbers>", text).strip()


def describe(ename: str, message: str) -> str:
    """How a failure reads in the tables: ``AssertionError: message``."""
    if not ename:
        return message or "(failed without a message)"
    return f"{ename}: {message}" if message else f"{ename} (no message)"


# --- reading the course -----------------------------------------------------------------------


def check_order(root: Path, assignment: str, notebook: str) -> list[str] | None:
    """The grade ids of a notebook's autograded test cells in ``source/``, in cell order."""
    path = root / "source" / assignment / f"{notebook}.ipynb"
    if not path.exists():
        return None
    return [notebooks.grade_id(cell) for cell in notebooks.read(path).cells if notebooks.is_test_cell(cell)]


def checks_of(root: Path, assignment: str, gradebook_notebook) -> list[Check]:
    """A notebook's checks: the gradebook's code grade cells, in the source's order where known."""
    cells = {cell.name: cell for cell in gradebook_notebook.grade_cells if cell.cell_type == "code"}
    order = check_order(root, assignment, gradebook_notebook.name)
    names = [name for name in order if name in cells] if order is not None else sorted(cells)
    return [Check(gradebook_notebook.name, name, float(cells[name].max_score)) for name in names]


def verdicts(path: Path) -> dict[str, tuple[str, str]] | None:
    """Each graded test cell's (ename, evalue) in an autograded notebook; ("", "") when it passed.

    None when there is no readable notebook. The file is parsed, never executed.
    """
    try:
        nb = notebooks.read(path)
    except (OSError, ValueError, KeyError, nbformat.reader.NotJSONError):
        return None
    found = {}
    for cell in nb.cells:
        if notebooks.is_test_cell(cell):
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            error = errors[0] if errors else {}
            found[notebooks.grade_id(cell)] = (str(error.get("ename", "")), str(error.get("evalue", "")))
    return found


def notebook_handed_in(root: Path, student: str, assignment: str, notebook: str) -> bool:
    """Whether the student's submission holds the notebook.

    The grader grades a missing notebook as the release's stubs; only ``submitted/`` tells the
    two apart. Without a submitted folder (cleaned up after grading) the graded copy counts.
    """
    folder = root / "submitted" / student / assignment
    return not folder.is_dir() or (folder / f"{notebook}.ipynb").exists()


def classify(check: Check, auto_score: float | None, error: tuple[str, str]) -> Status:
    score = auto_score or 0.0
    if score >= check.max_points:
        return Status.PASSED
    if error == (STUB_ERROR, ""):
        return Status.UNANSWERED
    return Status.PARTIAL if score > 0 else Status.FAILED


def load_results(root: Path, assignment: str, db_url: str | None = None) -> AssignmentResults:
    """Read the gradebook and the autograded notebooks of one assignment."""
    from nbgrader.api import Gradebook

    environment_bin_on_path()
    with Gradebook(gradebook_url(root, db_url)) as gradebook:
        students = sorted(student.id for student in gradebook.students)
        gb_assignment = gradebook.find_assignment(assignment)
        results = AssignmentResults(assignment, students, [], [])
        for gb_notebook in sorted(gb_assignment.notebooks, key=lambda nb: nb.name):
            results.notebooks.append(gb_notebook.name)
            results.max_scores[gb_notebook.name] = float(gb_notebook.max_score)
            results.scores[gb_notebook.name] = []
            results.checks += checks_of(root, assignment, gb_notebook)
        submitted = {
            (sub.student_id, nb.name): nb
            for sub in gradebook.assignment_submissions(assignment)
            for nb in sub.notebooks
        }
        for student in students:
            for notebook in results.notebooks:
                results.outcomes += student_outcomes(root, results, student, notebook, submitted)
    return results


def student_outcomes(root: Path, results: AssignmentResults, student: str, notebook: str, submitted):
    """One student's outcomes on one notebook's checks; records their notebook score."""
    checks = [check for check in results.checks if check.notebook == notebook]
    graded = submitted.get((student, notebook))
    if graded is None or not notebook_handed_in(root, student, results.assignment, notebook):
        return [Outcome(student, check, Status.MISSING) for check in checks]
    results.scores[notebook].append(float(graded.score))
    results.pending[notebook] += bool(graded.needs_manual_grade)
    auto_scores = {grade.name: grade.auto_score for grade in graded.grades}
    path = root / "autograded" / student / results.assignment / f"{notebook}.ipynb"
    read = verdicts(path)
    outcomes = []
    for check in checks:
        ename, evalue = (read or {}).get(check.grade_id, ("", ""))
        if read is None:
            evalue = "(no autograded notebook to read the message from)"
        status = classify(check, auto_scores.get(check.grade_id), (ename, evalue))
        if status is Status.PASSED:
            ename, evalue = "", ""
        outcomes.append(Outcome(student, check, status, ename, evalue))
    return outcomes


# --- the analysis -----------------------------------------------------------------------------


def summarise_checks(results: AssignmentResults) -> list[CheckSummary]:
    counts = defaultdict(Counter)
    for outcome in results.outcomes:
        counts[outcome.check][outcome.status] += 1
    summaries = []
    for check in results.checks:
        c = counts[check]
        summaries.append(
            CheckSummary(
                check,
                class_size=len(results.students),
                handed_in=sum(c.values()) - c[Status.MISSING],
                unanswered=c[Status.UNANSWERED],
                passed=c[Status.PASSED],
                partial=c[Status.PARTIAL],
                failed=c[Status.FAILED],
            )
        )
    return summaries


def failure_groups(results: AssignmentResults) -> list[FailureGroup]:
    """Failures (failed or partial) grouped per check and normalised message, most frequent first."""
    handed_in = {s.check: s.handed_in for s in summarise_checks(results)}
    groups: dict[tuple, FailureGroup] = {}
    for outcome in results.outcomes:
        if outcome.status not in (Status.FAILED, Status.PARTIAL):
            continue
        key = (outcome.check, outcome.ename, normalise_message(outcome.evalue))
        if key not in groups:
            groups[key] = FailureGroup(outcome.check, key[1], key[2], handed_in[outcome.check])
        groups[key].variants[outcome.evalue] += 1
    order = {check: index for index, check in enumerate(results.checks)}
    return sorted(groups.values(), key=lambda g: (-g.students, order[g.check], g.ename, g.message))


# --- figures ----------------------------------------------------------------------------------

COLOURS = {  # Okabe-Ito: distinguishable with the common colour-vision deficiencies
    Status.PASSED: "#009E73",
    Status.PARTIAL: "#E69F00",
    Status.FAILED: "#D55E00",
    Status.UNANSWERED: "#BBBBBB",
}


def png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def pass_rate_figure(summaries: list[CheckSummary]) -> str:
    """Horizontal stacked bars, one per check (first check on top): shares of the hand-ins."""
    figure = Figure(figsize=(9, 0.45 * len(summaries) + 1.2))
    axes = figure.subplots()
    labels = [f"{s.check.grade_id} ({s.check.max_points:g} pt)" for s in summaries]
    rows = range(len(summaries))
    left = [0.0] * len(summaries)
    for status, attribute in (
        (Status.PASSED, "passed"),
        (Status.PARTIAL, "partial"),
        (Status.FAILED, "failed"),
        (Status.UNANSWERED, "unanswered"),
    ):
        shares = [getattr(s, attribute) / s.handed_in if s.handed_in else 0.0 for s in summaries]
        axes.barh(rows, shares, left=left, color=COLOURS[status], label=status.value, height=0.7)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for row, s in zip(rows, summaries, strict=True):
        note = f"{s.passed}/{s.handed_in}" + (f"  {s.flag}" if s.flag else "")
        axes.text(1.02, row, note, va="center", fontsize=9, color="#B00020" if s.flag else "black")
    axes.set_yticks(list(rows), labels, fontsize=9)
    axes.invert_yaxis()
    axes.set_xlim(0, 1)
    axes.set_xlabel("share of the students who handed the notebook in")
    axes.xaxis.set_major_formatter(lambda x, _: f"{x:.0%}")
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / len(summaries) - 0.12), ncol=4, frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    return png_data_uri(figure)


def score_histogram(scores: list[float], max_score: float) -> str:
    """Counts of students per notebook score, one bar per point."""
    figure = Figure(figsize=(6, 2.6))
    axes = figure.subplots()
    edges = [edge - 0.5 for edge in range(int(max_score) + 2)]
    axes.hist(scores, bins=edges, color="#0072B2", edgecolor="white")
    axes.set_xlim(-0.5, max_score + 0.5)
    axes.set_xlabel(f"score (out of {max_score:g})")
    axes.set_ylabel("students")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.spines[["top", "right"]].set_visible(False)
    return png_data_uri(figure)


# --- outputs ----------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.0%}"


CHECK_COLUMNS = [
    "assignment",
    "notebook",
    "grade_id",
    "max_points",
    "class_size",
    "handed_in",
    "unanswered",
    "attempted",
    "passed",
    "partial",
    "failed",
    "pass_rate",
    "flag",
]
FAILURE_COLUMNS = [
    "assignment",
    "notebook",
    "grade_id",
    "students",
    "share_of_handed_in",
    "error_type",
    "message",
    "distinct_messages",
    "example_message",
]


def write_checks_csv(assignment: str, summaries: list[CheckSummary], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CHECK_COLUMNS)
        for s in summaries:
            rate = "" if s.pass_rate is None else f"{s.pass_rate:.4f}"
            writer.writerow(
                [assignment, s.check.notebook, s.check.grade_id, f"{s.check.max_points:g}", s.class_size]
                + [s.handed_in, s.unanswered, s.attempted, s.passed, s.partial, s.failed, rate, s.flag]
            )


def write_failures_csv(assignment: str, groups: list[FailureGroup], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(FAILURE_COLUMNS)
        for g in groups:
            writer.writerow(
                [assignment, g.check.notebook, g.check.grade_id, g.students, f"{g.share:.4f}", g.ename]
                + [g.message, len(g.variants), g.example]
            )


PAGE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Item analysis: {{ assignment }}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.flag { color: #B00020; font-weight: 600; white-space: nowrap; }
.msg { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-word; }
.note { color: #555; font-size: 0.9em; }
section { margin-top: 2.5em; }
table.wide { width: 100%; }
tr.first td { border-top: 2px solid #999; }
</style></head><body>
<h1>Item analysis: {{ assignment }}</h1>
<p>Class: {{ class_size }} students in the gradebook.
{% for nb in notebooks %}{{ nb.name }}: {{ nb.handed_in }} handed in{% if nb.missing %},
{{ nb.missing }} not{% endif %}{% if not loop.last %}; {% endif %}{% endfor %}.</p>
<p class="note">A check is passed at full points (nbgrader's automatic score; partial credit counts
as not passed, in its own column). Shares and pass rates
are of the students who handed the notebook in; <em>unanswered</em> means the release's stub was
still in place (a bare NotImplementedError). Messages are grouped with decimal numbers replaced by
&lt;number&gt;; one real message is shown per group.</p>

<h2>Flags</h2>
{% if flagged %}<table>
<tr><th>notebook</th><th>check</th><th>flag</th><th>passed</th><th>what it may mean</th></tr>
{% for s in flagged %}<tr><td>{{ s.check.notebook }}</td><td>{{ s.check.grade_id }}</td>
<td class="flag">{{ s.flag }}</td><td class="n">{{ s.passed }} of {{ s.handed_in }}</td>
<td>{{ meanings[s.flag] }}</td></tr>
{% endfor %}</table>{% else %}<p>No check that nobody or everybody passed.</p>{% endif %}

<h2>Most frequent failures</h2>
{% if top %}<table><tr><th>students</th><th>share</th><th>notebook</th><th>check</th><th>message</th></tr>
{% for g in top %}<tr><td class="n">{{ g.students }}</td><td class="n">{{ percent(g.share) }}</td>
<td>{{ g.check.notebook }}</td><td>{{ g.check.grade_id }}</td>
<td class="msg">{{ describe(g.ename, g.message) }}</td></tr>
{% endfor %}</table>{% else %}<p>No failures with a message.</p>{% endif %}

{% for nb in notebooks %}<section>
<h2>{{ nb.name }}</h2>
<p>{{ nb.handed_in }} of {{ class_size }} handed in{% if nb.pending %}; {{ nb.pending }} with
manually graded answers still to mark (they count 0 in the scores below){% endif %}.</p>
{% if nb.summaries %}<h3>Pass rate per check</h3>
<img alt="pass rate per check of {{ nb.name }}" src="{{ nb.pass_figure }}">
<table><tr><th>check</th><th>points</th><th>handed in</th><th>passed</th><th>partial</th>
<th>failed</th><th>unanswered</th><th>pass rate</th><th>flag</th></tr>
{% for s in nb.summaries %}<tr><td>{{ s.check.grade_id }}</td>
<td class="n">{{ "%g"|format(s.check.max_points) }}</td>
<td class="n">{{ s.handed_in }}</td><td class="n">{{ s.passed }}</td><td class="n">{{ s.partial }}</td>
<td class="n">{{ s.failed }}</td><td class="n">{{ s.unanswered }}</td>
<td class="n">{{ percent(s.pass_rate) }}</td><td class="flag">{{ s.flag }}</td></tr>
{% endfor %}</table>{% endif %}
{% if nb.histogram %}<h3>Scores</h3>
<img alt="score distribution of {{ nb.name }}" src="{{ nb.histogram }}">
<p class="note">{{ nb.handed_in }} students; mean {{ "%.1f"|format(nb.mean) }},
median {{ "%g"|format(nb.median) }}
out of {{ "%g"|format(nb.max_score) }}.</p>{% endif %}
{% if nb.failures %}<h3>Failure messages per check</h3>
<table class="wide"><tr><th>check</th><th>students</th><th>share</th><th>message</th></tr>
{% for s, groups, hidden in nb.failures %}{% for g in groups %}
<tr{% if loop.first %} class="first"{% endif %}><td>{% if loop.first %}{{ s.check.grade_id }}{% endif %}</td>
<td class="n">{{ g.students }}</td><td class="n">{{ percent(g.share) }}</td>
<td><span class="msg">{{ describe(g.ename, g.message) }}</span>
{% if g.variants|length > 1 or g.example != g.message %}<br><span class="note">
{% if g.variants|length > 1 %}{{ g.variants|length }} variants, {% endif %}e.g.
<span class="msg">{{ g.example }}</span></span>{% endif %}</td></tr>
{% endfor %}{% if hidden %}<tr><td></td><td colspan="3" class="note">
{{ hidden }} more in the CSV</td></tr>{% endif %}{% endfor %}</table>{% endif %}
</section>
{% endfor %}
</body></html>
""",
    autoescape=True,  # messages can carry a student's own text
)

MEANINGS = {
    "nobody passed": "students answered and none passed: a broken test, or a gap in the teaching",
    "everybody passed": "the check does not tell students apart",
    "nobody answered": "every hand-in left the stub",
}


def notebook_section(results: AssignmentResults, notebook: str, summaries, groups, top: int) -> dict:
    mine = [s for s in summaries if s.check.notebook == notebook]
    scores = results.scores[notebook]
    failures = []
    for s in mine:
        of_check = [g for g in groups if g.check == s.check]
        if of_check:
            failures.append((s, of_check[:top], max(0, len(of_check) - top)))
    return {
        "name": notebook,
        "handed_in": len(scores),
        "missing": len(results.students) - len(scores),
        "pending": results.pending[notebook],
        "summaries": mine,
        "pass_figure": pass_rate_figure(mine) if mine else "",
        "histogram": score_histogram(scores, results.max_scores[notebook]) if scores else "",
        "mean": statistics.fmean(scores) if scores else 0.0,
        "median": statistics.median(scores) if scores else 0.0,
        "max_score": results.max_scores[notebook],
        "failures": failures,
    }


def render_page(results: AssignmentResults, summaries, groups, top: int = TOP_FAILURES) -> str:
    return PAGE.render(
        assignment=results.assignment,
        class_size=len(results.students),
        notebooks=[notebook_section(results, nb, summaries, groups, top) for nb in results.notebooks],
        flagged=[s for s in summaries if s.flag],
        meanings=MEANINGS,
        top=groups[:TOP_OVERALL],
        percent=percent,
        describe=describe,
    )


def write_reports(results: AssignmentResults, out: Path, top: int = TOP_FAILURES) -> list[Path]:
    """Write the page and the two CSV files of one assignment; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    summaries, groups = summarise_checks(results), failure_groups(results)
    page = out / f"{results.assignment}.html"
    checks_csv = out / f"{results.assignment}_checks.csv"
    failures_csv = out / f"{results.assignment}_failures.csv"
    page.write_text(render_page(results, summaries, groups, top), encoding="utf-8")
    write_checks_csv(results.assignment, summaries, checks_csv)
    write_failures_csv(results.assignment, groups, failures_csv)
    return [page, checks_csv, failures_csv]


# --- command line -----------------------------------------------------------------------------


def graded_assignments(root: Path, db_url: str | None) -> list[str]:
    """Assignments in the gradebook with at least one graded submission."""
    from nbgrader.api import Gradebook

    environment_bin_on_path()
    with Gradebook(gradebook_url(root, db_url)) as gradebook:
        return sorted(a.name for a in gradebook.assignments if gradebook.assignment_submissions(a.name))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    parser.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: sqlite gradebook.db)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: reports/items)")
    parser.add_argument("--top", type=int, default=TOP_FAILURES, help="failure messages shown per check")


def run(root: Path, args: argparse.Namespace) -> int:
    available = graded_assignments(root, args.db)
    wanted = args.assignment or available
    unknown = sorted(set(wanted) - set(available))
    if unknown or not wanted:
        print(f"no graded submissions for: {', '.join(unknown) or 'any assignment'}")
        return 1
    out = args.out or root / "reports" / "items"
    for assignment in wanted:
        paths = write_reports(load_results(root, assignment, args.db), out, args.top)
        print(f"{assignment}: " + ", ".join(str(p) for p in paths))
    return 0
