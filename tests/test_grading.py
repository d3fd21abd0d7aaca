"""Unit tests of the class grader: canonical submissions, sandbox settings, feedback, determinism."""

import copy
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
from conftest import REPO, copy_course

from convae import course, notebooks
from convae.__main__ import main as convae_main
from convae.grading import canonicalise, commands, pipeline, report, sandbox
from convae.leaks import source_secrets

RELEASE = REPO / "release" / "ps1" / "conv_arithmetic.ipynb"


def release():
    return notebooks.read(RELEASE)


def ids(nb):
    return [notebooks.grade_id(c) for c in nb.cells]


def find(nb, grade_id):
    return next(c for c in nb.cells if notebooks.grade_id(c) == grade_id)


def test_untouched_release_needs_no_repair():
    out, repairs = canonicalise.canonicalise(release(), release())
    assert repairs == [] and ids(out) == ids(release())


def test_deleted_cells_come_back_in_place():
    student = release()
    student.cells = [
        c for c in student.cells if notebooks.grade_id(c) not in ("td2_q1", "test_dense_param_count")
    ]
    out, repairs = canonicalise.canonicalise(release(), student)
    assert ids(out) == ids(release())
    assert sorted(repairs) == ["deleted cell td2_q1 restored", "deleted cell test_dense_param_count restored"]


def test_answers_kept_and_scratch_cells_stay_where_the_student_put_them():
    student = release()
    find(student, "dense_param_count").source = "def dense_param_count(a, b, bias=False):\n    return 1"
    index = ids(student).index("dense_param_count")
    student.cells.insert(index, nbformat.v4.new_code_cell("helper = 3"))
    out, repairs = canonicalise.canonicalise(release(), student)
    assert repairs == []
    assert find(out, "dense_param_count").source.endswith("return 1")
    position = [c.source for c in out.cells].index("helper = 3")
    assert notebooks.grade_id(out.cells[position + 1]) == "dense_param_count"


def test_a_written_answer_keeps_its_pasted_images_within_the_size_kept_for_outputs():
    student = release()
    answer = find(student, "large_inputs_answer")
    answer.source = "My sketch: ![growth](attachment:growth.png)"
    answer["attachments"] = {"growth.png": {"image/png": "iVBORw0KGgo="}}
    out, repairs = canonicalise.canonicalise(release(), student)
    assert repairs == []
    assert find(out, "large_inputs_answer")["attachments"] == answer["attachments"]
    nbformat.validate(out)

    answer["attachments"] = {"huge.png": {"image/png": "A" * (canonicalise.MAX_ATTACHMENT_CHARS + 1)}}
    out, repairs = canonicalise.canonicalise(release(), student)
    assert "attachments" not in find(out, "large_inputs_answer")
    assert repairs == [
        f"large_inputs_answer: pasted images of {canonicalise.MAX_ATTACHMENT_CHARS + 1:,} "
        f"characters dropped (more than {canonicalise.MAX_ATTACHMENT_CHARS:,})"
    ]


def test_duplicates_edits_and_type_changes_are_repaired():
    student = release()
    test_cell = find(student, "test_conv2d_param_count")
    test_cell.source = "pass"
    student.cells.append(copy.deepcopy(find(student, "dense_param_count")))
    answer = find(student, "conv2d_output_size")
    answer.cell_type = "markdown"
    out, repairs = canonicalise.canonicalise(release(), student)
    assert find(out, "test_conv2d_param_count").source == find(release(), "test_conv2d_param_count").source
    assert find(out, "conv2d_output_size").cell_type == "code"
    assert ids(out) == ids(release())
    assert len(repairs) == 3


def test_sandbox_never_exposes_the_hidden_folder():
    with pytest.raises(ValueError):
        sandbox.bwrap_arguments(Path("/course/root"), [Path("/course")], [])
    args = sandbox.bwrap_arguments(Path("/course/root"), [Path("/course/root/autograded/x/ps1")], [])
    assert args.index("/course/root") < args.index("/course/root/autograded/x/ps1")
    assert "--unshare-net" in args


def test_parallel_kernels_share_the_cores(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    settings = pipeline.Settings(tmp_path, sandbox=False, kernel_threads=1)
    env = pipeline.worker_environment(settings, tmp_path / "runtime", tmp_path / "staged")
    assert env["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the grader's own choice wins
    assert pipeline.worker_environment(settings, tmp_path, tmp_path)["OMP_NUM_THREADS"] == "3"


def test_grading_says_plainly_when_there_is_no_sandbox(monkeypatch):
    monkeypatch.setattr(sandbox, "probe", lambda: "bubblewrap (bwrap) is not installed")
    enabled, note = pipeline.sandbox_setting("auto")  # main: the bundled example class only
    assert not enabled and "UNAVAILABLE" in note and "bwrap" in note and "example class" in note
    with pytest.raises(SystemExit):
        pipeline.sandbox_setting("on")
    assert pipeline.sandbox_setting("off")[0] is False


def test_grade_refuses_to_run_student_code_unsandboxed_unless_told(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "probe", lambda: "bubblewrap (bwrap) is not installed")
    (tmp_path / "submitted").mkdir()
    with pytest.raises(SystemExit, match="--sandbox off"):
        convae_main(["--root", str(tmp_path), "grade"])


def test_the_sandbox_line_says_which_limits_hold_and_how(tmp_path):
    settings = pipeline.Settings(tmp_path, sandbox=True, kernel_threads=1, cgroups=("cpu", "memory", "pids"))
    note = pipeline.grading_note(settings, "sandbox: on (bubblewrap: no network, course folder hidden)")
    assert note.startswith("sandbox: on (bubblewrap") and note.endswith("300 s per notebook)")
    assert "4096 MiB memory, 512 processes and threads, 1 CPU" in note
    assert "/tmp and /dev/shm 512 MiB each, scratch 256 MiB" in note
    without = replace(settings, cgroups=())
    note = pipeline.grading_note(without, "sandbox: on (bubblewrap)", "cannot create /sys/fs/cgroup/...")
    assert "no cgroup for memory, pids, cpu (cannot create" in note
    assert "the job's total memory is not limited" in note and "RLIMIT_NPROC 512" in note


def test_feedback_hides_hidden_tests_but_names_the_failed_check(graded_course):
    # The complete example student hands in the model answers as their own: only hidden tests
    # and mark schemes are secrets from a student's feedback.
    sources = sorted((REPO / "source").glob("*/*.ipynb"))
    secrets = set().union(*(source_secrets(p, kinds=("hidden", "mark_scheme")) for p in sources))
    pages = sorted((graded_course / "feedback").glob("*/*/*.html"))
    assert pages
    for page in pages:
        text = page.read_text()
        assert "BEGIN HIDDEN TESTS" not in text and 'File "' not in text
        for secret in secrets:
            assert secret not in text, f"{page}: {secret}"
    wrong = (graded_course / "feedback" / "example-wrong" / "ps1" / "conv_arithmetic.html").read_text()
    assert "AssertionError" in wrong and "conv2d_output_size(" in wrong


def test_grading_twice_gives_identical_grades(graded_course, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(graded_course, root)  # graded_course is shared: grade again in a copy
    before = course.notebook_grades(root)
    settings = pipeline.Settings(root, sandbox=sandbox.probe() is None)
    results = pipeline.grade_class(settings, students=["example-wrong", "example-partial"], progress=False)
    assert all(r.ok for r in results)
    assert course.notebook_grades(root) == before


def test_students_are_in_the_gradebook_before_parallel_workers_start(tmp_path, monkeypatch):
    # nbgrader's autograde adds a missing student itself; two workers grading one student's
    # assignments at once both try, and one fails on the UNIQUE constraint.
    from nbgrader.api import Gradebook

    root = copy_course(tmp_path / "course")
    shutil.copytree(REPO / "release", root / "release")
    for student in ("ada", "bob"):
        for assignment in ("ps1", "ps2"):
            (root / "submitted" / student / assignment).mkdir(parents=True)
    settings = pipeline.Settings(root, sandbox=False)

    def grade_one(settings, student, assignment):
        with Gradebook(commands.gradebook_url(settings.root, settings.db_url)) as gradebook:
            gradebook.find_student(student)  # raises MissingEntry when absent
        return report.JobResult(student, assignment)

    monkeypatch.setattr(pipeline, "grade_one", grade_one)
    results = pipeline.grade_class(settings, jobs=2, progress=False)
    assert [(r.student, r.assignment) for r in results] == [
        ("ada", "ps1"),
        ("ada", "ps2"),
        ("bob", "ps1"),
        ("bob", "ps2"),
    ]


def test_a_locked_gradebook_is_graded_again_once(tmp_path, monkeypatch):
    calls = []

    def run_worker(settings, student, assignment, runtime, group=None):
        calls.append(student)
        if len(calls) == 1:
            return subprocess.CompletedProcess([], 2, "", "sqlite3.OperationalError: database is locked")
        graded = settings.root / "autograded" / student / assignment
        graded.mkdir(parents=True)
        for nb in (settings.root / "release" / assignment).glob("*.ipynb"):
            (graded / nb.name).write_text("{}")
        return subprocess.CompletedProcess([], 0, "", "")

    root = copy_course(tmp_path / "course")
    shutil.copytree(REPO / "release", root / "release")
    (root / "submitted" / "ada" / "ps2").mkdir(parents=True)
    monkeypatch.setattr(pipeline, "run_worker", run_worker)
    result = pipeline.grade_one(pipeline.Settings(root, sandbox=False), "ada", "ps2")
    assert calls == ["ada", "ada"] and result.ok
    assert result.flags[-1] == "gradebook busy, graded again"
