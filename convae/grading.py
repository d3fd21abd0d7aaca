"""Class grading on top of nbgrader: repaired submissions, parallel workers, a sandboxed kernel.

``python -m convae grade`` grades every ``submitted/<student>/<assignment>/`` (or a selection):
1. each submission is *canonicalised* against the release into ``.grading/submitted/``: the
   release's cells in the release's order, the student's answer cells put back by ``grade_id``,
   the student's own unmarked cells kept where they were. This repairs what breaks nbgrader
   (deleted or duplicated test cells, changed cell types, edited locked cells) and turns an
   invalid or missing notebook into an unanswered one, flagged;
2. one ``nbgrader autograde`` and ``generate_feedback`` process runs per (student, assignment),
   ``jobs`` at a time; its kernels are forked by one kernel server per job (libraries imported
   once, ``convae.kernel_server``), sandboxed by ``convae.sandbox`` when bubblewrap works;
3. a report (``autograded/grading_report.csv``) flags every repair and failure; the exit code
   is non-zero when any job failed.
The nbgrader preprocessors below are wired in by ``nbgrader_config.py``.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import nbformat
from nbclient.exceptions import DeadKernelError
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.preprocessors.clearhiddentests import ClearHiddenTests
from traitlets import Integer

import convae
from convae import notebooks, sandbox

STAGING = ".grading"
GRADING_KERNEL = "convae-grading"


# --- nbgrader preprocessors -----------------------------------------------------------------


class ResilientExecute(Execute):
    """Execute, but a dead kernel costs only the cell that killed it.

    nbgrader aborts the whole notebook when the kernel dies (``os._exit``, a crash, the memory
    or CPU limit). Here the cell gets an error output, a fresh kernel replays the cells before
    it (skipping ones that killed or timed out), and grading goes on.
    """

    def preprocess(self, nb, resources=None, km=None):
        self._skip_on_replay = set()
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            cell.outputs.append(
                nbformat.v4.new_output(
                    "error",
                    ename="KernelDied",
                    evalue="the kernel died while running this cell (exit, crash, or a resource limit); "
                    "grading went on in a fresh kernel",
                    traceback=["KernelDied: the kernel died while running this cell"],
                )
            )
            self._skip_on_replay.add(index)
            self._restart_and_replay(index)
            return cell, self.resources
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._skip_on_replay.add(index)
        return cell, resources

    def _restart_and_replay(self, index):
        from nbclient.util import run_sync

        run_sync(self.km.restart_kernel)(now=True)
        self.kc.stop_channels()
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
        for earlier, cell in enumerate(self.nb.cells[:index]):
            if cell.cell_type == "code" and earlier not in self._skip_on_replay:
                try:
                    self.execute_cell(copy.deepcopy(cell), earlier, store_history=False)
                except DeadKernelError:
                    self._skip_on_replay.add(earlier)
                    return self._restart_and_replay(index)


class TruncateLargeOutputs(NbGraderPreprocessor):
    """Cap every output's size: a 100 MB print must not bloat the graded copy or the feedback."""

    max_text = Integer(20_000, help="characters kept of a text output").tag(config=True)
    max_data = Integer(2_000_000, help="bytes kept of a rich output (images, HTML)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if "text" in output and len(output.text) > self.max_text:
                dropped = len(output.text) - self.max_text
                output.text = (
                    output.text[: self.max_text] + f"\n... [{dropped:,} characters cut by the grader]\n"
                )
            for mime, value in list(output.get("data", {}).items()):
                if len(str(value)) > self.max_data:
                    output.data[mime] = f"[{mime} output of {len(str(value)):,} bytes removed by the grader]"
                    if mime != "text/plain":
                        output.data.pop(mime)
                        output.data["text/plain"] = f"[{mime} output removed by the grader: too large]"
        return cell, resources


class RedactHiddenTests(NbGraderPreprocessor):
    """Feedback shows which check failed and its message, not the hidden test or its traceback."""

    def preprocess(self, nb, resources):
        hidden = ClearHiddenTests(enforce_metadata=False)
        for cell in nb.cells:
            if not notebooks.is_test_cell(cell):
                continue
            hidden._remove_hidden_test_region(cell)
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return nb, resources


# --- canonical submissions --------------------------------------------------------------------


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
                answers[cell_id] = cell.source
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
            cell.source = answers[cell_id]
        cells.append(cell)
        cells += scratch_after.get(cell_id, [])
    out.cells = cells
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return out, repairs


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


# --- running the class ------------------------------------------------------------------------


@dataclass
class JobResult:
    student: str
    assignment: str
    ok: bool = True
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def status(self) -> str:
        return "failed" if not self.ok else "repaired" if self.flags else "ok"


@dataclass(frozen=True)
class Settings:
    root: Path
    sandbox: bool
    timeout: int | None = None
    db_url: str | None = None
    memory: int = sandbox.DEFAULT_MEMORY
    cpu_seconds: int = sandbox.DEFAULT_CPU_SECONDS
    job_timeout: int = 3600  # a whole submission; a stuck job must not hold the class forever
    kernel_threads: int | None = None  # torch/OpenMP threads per kernel; None: cores / jobs


def install_grading_kernel(root: Path) -> Path:
    """A kernelspec that launches ``convae.sandbox``; returns the folder to put on JUPYTER_PATH."""
    jupyter_path = root / STAGING / "jupyter"
    spec_dir = jupyter_path / "kernels" / GRADING_KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "convae.sandbox", "{connection_file}"],
        "display_name": "Python 3 (grading)",
        "language": "python",
        # The launcher is not the kernel: interrupt through the kernel's control channel.
        "interrupt_mode": "message",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return jupyter_path


def worker_overrides(settings: Settings, runtime: Path) -> dict:
    """nbgrader settings for one job, merged over ``nbgrader_config.py`` by the worker."""
    overrides = {
        "CourseDirectory": {"root": str(settings.root), "submitted_directory": f"{STAGING}/submitted"},
        "Application": {"log_level": "WARN"},
    }
    if settings.db_url:
        overrides["CourseDirectory"]["db_url"] = settings.db_url
    if settings.timeout:
        overrides["Execute"] = {"timeout": settings.timeout}
    overrides.setdefault("Execute", {})["kernel_name"] = GRADING_KERNEL
    # IPC sockets (a sandbox has no loopback) need an absolute prefix: client and kernel run in
    # different folders.
    overrides["KernelManager"] = {"transport": "ipc", "ip": str(runtime / "kernel")}
    return overrides


def worker_environment(settings: Settings, runtime: Path, staged: Path) -> dict:
    from convae import course

    course.environment_bin_on_path()
    env = dict(os.environ)
    env.pop("NBGRADER_EXECUTION", None)
    env["JUPYTER_RUNTIME_DIR"] = str(runtime)
    env[convae.SUBMISSION_DIR] = str(staged)  # sibling notebooks (read-only in the sandbox)
    env["JUPYTER_PATH"] = str(settings.root / STAGING / "jupyter")
    env[sandbox.RUNTIME_DIR] = str(runtime)
    if settings.kernel_threads and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(settings.kernel_threads)  # torch sizes its pool from this
    if settings.sandbox:
        env["CONVAE_SANDBOX_HIDE"] = str(settings.root)
        env["CONVAE_SANDBOX_MEMORY"] = str(settings.memory)
        env["CONVAE_SANDBOX_CPU"] = str(settings.cpu_seconds)
    return env


# SQLite refuses a writer while another holds the lock for longer than its busy timeout.
GRADEBOOK_CONTENTION = "database is locked"


def run_worker(settings: Settings, student: str, assignment: str, runtime: Path):
    """Autograde and write feedback for one staged submission in a fresh process."""
    cmd = [
        sys.executable,
        "-m",
        "convae.grading_worker",
        str(settings.root),
        assignment,
        student,
        json.dumps(worker_overrides(settings, runtime)),
    ]
    return subprocess.run(
        cmd,
        cwd=settings.root,
        env=worker_environment(settings, runtime, staged_submission(settings.root, student, assignment)),
        capture_output=True,
        text=True,
        timeout=settings.job_timeout,
    )


def grade_one(settings: Settings, student: str, assignment: str) -> JobResult:
    """Stage, autograde and write feedback for one submission; never raises."""
    result = JobResult(student, assignment)
    start = time.perf_counter()
    autograded = settings.root / "autograded" / student / assignment
    # Sockets live here; a short path, because a Unix socket's path may not pass 107 bytes.
    runtime = Path(tempfile.mkdtemp(prefix="convae-grading-"))
    try:
        result.flags += stage_submission(settings.root, student, assignment)
        proc = run_worker(settings, student, assignment, runtime)
        if proc.returncode != 0 and GRADEBOOK_CONTENTION in proc.stderr:
            result.flags.append("gradebook busy, graded again")
            proc = run_worker(settings, student, assignment, runtime)
        expected = sorted((settings.root / "release" / assignment).glob("*.ipynb"))
        graded = sorted(autograded.glob("*.ipynb")) if autograded.exists() else []
        if proc.returncode == 3:
            result.ok = False
            result.flags.append(f"feedback failed: {last_error_line(proc.stderr)}")
        elif proc.returncode != 0 or len(graded) != len(expected):
            result.ok = False
            result.flags.append(f"autograde failed: {last_error_line(proc.stderr)}")
            if autograded.exists():
                shutil.rmtree(autograded)  # never leave a half-written folder behind
    except subprocess.TimeoutExpired:
        result.ok = False
        result.flags.append(f"grading took longer than {settings.job_timeout} s and was stopped")
        shutil.rmtree(autograded, ignore_errors=True)
    except Exception as error:  # noqa: BLE001 -- one broken submission must not stop the class
        result.ok = False
        result.flags.append(f"grading error: {type(error).__name__}: {error}")
    finally:
        sandbox.stop_server(runtime)  # the job's kernel server, started by its first kernel
        shutil.rmtree(runtime, ignore_errors=True)
    result.seconds = time.perf_counter() - start
    return result


def last_error_line(stderr: str) -> str:
    """The most telling line of nbgrader's log: the last exception raised, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    exceptions = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
    return (exceptions or lines or ["no output"])[-1][:300]


def submissions(root: Path, students=None, assignments=None) -> list[tuple[str, str]]:
    found = []
    for student_dir in sorted((root / "submitted").iterdir()) if (root / "submitted").exists() else []:
        if not student_dir.is_dir() or (students and student_dir.name not in students):
            continue
        for assignment_dir in sorted(student_dir.iterdir()):
            if assignment_dir.is_dir() and (not assignments or assignment_dir.name in assignments):
                if (root / "release" / assignment_dir.name).is_dir():
                    found.append((student_dir.name, assignment_dir.name))
    return found


def ensure_gradebook(settings: Settings, students=()) -> None:
    """Fill the gradebook before any worker starts.

    Hidden tests are restored from the gradebook, which generate_assignment fills. Students are
    added here too: nbgrader's autograde looks a student up and adds them when missing, so two
    workers grading the same student's assignments at once race, and the loser fails with a
    UNIQUE-constraint error.
    """
    from nbgrader.api import Gradebook

    from convae import course

    course.environment_bin_on_path()
    url = course.gradebook_url(settings.root, settings.db_url)
    with Gradebook(url) as gradebook:
        known = {a.name for a in gradebook.assignments}
    db_args = [f"--CourseDirectory.db_url={settings.db_url}"] if settings.db_url else []
    for assignment in course.assignments(settings.root):
        if assignment not in known:
            course.nbgrader(settings.root, "generate_assignment", assignment, "--force", *db_args)
    with Gradebook(url) as gradebook:
        for student in students:
            gradebook.update_or_create_student(student)


def grade_class(
    settings: Settings, jobs: int | None = None, students=None, assignments=None, progress: bool = True
) -> list[JobResult]:
    """Grade every selected submission, ``jobs`` at a time; returns one result per submission."""
    from tqdm.auto import tqdm

    todo = submissions(settings.root, students, assignments)
    ensure_gradebook(settings, students=sorted({student for student, _ in todo}))
    install_grading_kernel(settings.root)
    jobs = jobs or os.cpu_count() or 1
    if settings.kernel_threads is None:  # parallel kernels that each use every core fight over them
        settings = replace(settings, kernel_threads=max(1, (os.cpu_count() or 1) // jobs))
    results = []
    with (
        ThreadPoolExecutor(max_workers=jobs) as pool,
        tqdm(total=len(todo), desc="grading", unit="submission", disable=not progress) as bar,
    ):
        futures = [pool.submit(grade_one, settings, s, a) for s, a in todo]
        for future in as_completed(futures):
            result = future.result()
            results.append(result)
            bar.set_postfix_str(f"{result.student}/{result.assignment} {result.status}")
            bar.update(1)
    results.sort(key=lambda r: (r.student, r.assignment))
    write_report(results, settings.root / "autograded" / "grading_report.csv")
    return results


def write_report(results: list[JobResult], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "status", "seconds", "flags"])
        for r in results:
            writer.writerow([r.student, r.assignment, r.status, f"{r.seconds:.1f}", " | ".join(r.flags)])


def sandbox_setting(mode: str) -> tuple[bool, str]:
    """Resolve ``--sandbox auto|on|off`` to (enabled, a sentence for the grader)."""
    if mode == "off":
        return False, "sandbox: OFF (requested) -- student code runs with your permissions"
    reason = sandbox.probe()
    if reason is None:
        return True, "sandbox: on (bubblewrap: no network, course folder hidden, memory/CPU limits)"
    if mode == "on":
        raise SystemExit(f"sandbox requested but unavailable: {reason}")
    return False, f"sandbox: UNAVAILABLE ({reason}) -- student code runs unsandboxed"
