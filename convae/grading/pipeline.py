"""The class, graded: one job (student x assignment) per worker process, ``jobs`` at a time.

``python -m convae grade`` grades every ``submitted/<student>/<assignment>/`` (or a selection):
1. each submission is canonicalised against the release (``canonicalise``), every repair flagged;
2. one worker process (``worker``) per job runs nbgrader's autograde and feedback; the job's
   kernels are forked by one kernel server per job (``kernel_server``), inside the bubblewrap
   sandbox when it works (``sandbox``) and inside the job's cgroups, which bound its memory,
   processes and CPU share as a whole (``limits``); its test cells are judged by a judge forked
   from the run's judge server (``judge``), outside every sandbox;
3. a report (``autograded/grading_report.csv``, ``report``) lists every repair, every fault of a
   student's side and every failure; the exit code is non-zero when any job failed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

import convae
from convae.grading import commands, execute, judge, limits, sandbox
from convae.grading.canonicalise import STAGING, stage_submission, staged_submission
from convae.grading.report import JobResult, last_error_line, write_report

GRADING_KERNEL = "convae-grading"
MIB = 2**20
# Limits on one job (a student's assignment) as a whole; 0 means none. Graded two at a time here,
# the example class's heaviest job (ps3, the complete student) peaked at 774 MiB and 19 processes
# and threads, and no job was held back by its CPU share; grading writes nothing to /tmp but the
# kernels' connection files.
DEFAULT_JOB_MEMORY = 4096 * MIB
DEFAULT_JOB_PIDS = 512
DEFAULT_TMP_SIZE = 512 * MIB  # the sandbox's /tmp, and its /dev/shm
DEFAULT_SCRATCH_SIZE = 256 * MIB  # new files in the working copy, beyond the submission's own
RUNTIME_PREFIX = "convae-grading-"  # then the grader's pid: a dead grader's folders can be told
STALE_SECONDS = 2 * 3600  # a runtime folder untouched this long is no live job's (job_timeout: 1 h)


@dataclass(frozen=True)
class Settings:
    root: Path
    sandbox: bool
    timeout: int | None = None
    db_url: str | None = None
    memory: int = sandbox.DEFAULT_MEMORY  # address space of each kernel process
    cpu_seconds: int = sandbox.DEFAULT_CPU_SECONDS  # CPU time of each kernel process
    job_timeout: int = 3600  # a whole submission; a stuck job must not hold the class forever
    kernel_threads: int | None = None  # torch/OpenMP threads per kernel; None: cores / jobs
    job_memory: int = DEFAULT_JOB_MEMORY  # bytes, every process of the job together
    job_pids: int = DEFAULT_JOB_PIDS  # processes and threads of the job
    job_cpus: float | None = None  # cores; None: as many as the kernel's threads (cores / jobs)
    tmp_size: int = DEFAULT_TMP_SIZE
    scratch_size: int = DEFAULT_SCRATCH_SIZE
    notebook_seconds: int = execute.DEFAULT_NOTEBOOK_SECONDS  # time budget of one notebook
    # The cgroup controllers that hold each job; None: those this machine allows (probed once).
    cgroups: tuple[str, ...] | None = None
    judge_socket: Path | None = None  # the run's judge server; None: this process's (judge.process_server)
    # More nbgrader settings for every job (e.g. the benchmark's in-kernel baseline), as traitlets
    # sections: {"Autograde": {"autograde_preprocessors": [...]}}.
    nbgrader_overrides: dict = field(default_factory=dict, compare=False)


def install_grading_kernel(root: Path) -> Path:
    """A kernelspec that launches ``convae.grading.sandbox``; returns the folder to put on JUPYTER_PATH."""
    jupyter_path = root / STAGING / "jupyter"
    spec_dir = jupyter_path / "kernels" / GRADING_KERNEL
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [sys.executable, "-m", "convae.grading.sandbox", "{connection_file}"],
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
    overrides["ResilientExecute"] = {"notebook_seconds": settings.notebook_seconds}
    # IPC sockets (a sandbox has no loopback) need an absolute prefix: client and kernel run in
    # different folders.
    overrides["KernelManager"] = {"transport": "ipc", "ip": str(runtime / "kernel")}
    for section, values in settings.nbgrader_overrides.items():
        overrides.setdefault(section, {}).update(values)
    return overrides


def worker_environment(
    settings: Settings,
    runtime: Path,
    staged: Path,
    flags: Path | None = None,
    group: limits.JobGroup | None = None,
) -> dict:
    commands.environment_bin_on_path()
    env = dict(os.environ)
    env.pop("NBGRADER_EXECUTION", None)
    env.pop(limits.GROUPS, None)
    env["JUPYTER_RUNTIME_DIR"] = str(connection_files(runtime))
    env[convae.SUBMISSION_DIR] = str(staged)  # sibling notebooks (read-only in the sandbox)
    env["JUPYTER_PATH"] = str(settings.root / STAGING / "jupyter")
    env[sandbox.RUNTIME_DIR] = str(runtime)
    if flags is not None:
        env[execute.FLAGS_FILE] = str(flags)
    if settings.judge_socket:
        env[execute.JUDGE_SOCKET] = str(settings.judge_socket)
    if settings.kernel_threads and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(settings.kernel_threads)  # torch sizes its pool from this
    if group is not None:
        env.update(group.environment())
    if settings.sandbox:
        env["CONVAE_SANDBOX_HIDE"] = str(settings.root)
        env["CONVAE_SANDBOX_MEMORY"] = str(settings.memory)
        env["CONVAE_SANDBOX_CPU"] = str(settings.cpu_seconds)
        env[sandbox.TMP_SIZE] = str(settings.tmp_size)
        env[sandbox.SCRATCH_SIZE] = str(settings.scratch_size)
        if settings.job_pids and (group is None or "pids" not in group.controllers):
            env[sandbox.NPROC] = str(settings.job_pids)
    return env


def connection_files(runtime: Path) -> Path:
    """Where the kernel manager writes the kernels' connection files: next to the runtime folder,
    not in it, since the sandbox can write there and the kernel server empties it between kernels."""
    return runtime.with_name(f"{runtime.name}-jupyter")


def job_limits(settings: Settings) -> limits.Limits:
    cpus = settings.job_cpus if settings.job_cpus is not None else settings.kernel_threads or os.cpu_count()
    return limits.Limits(memory=settings.job_memory, pids=settings.job_pids, cpus=float(cpus or 0))


def job_group(settings: Settings, name: str) -> limits.JobGroup | None:
    """The job's cgroups, in the hierarchies of ``settings.cgroups``; None where there are none."""
    wanted = set(settings.cgroups or ())
    found = [h for h in limits.hierarchies() if h.controllers & wanted]
    return limits.JobGroup.create(name, job_limits(settings), found) if found else None


def runtime_folder(group: limits.JobGroup | None) -> Path:
    """The job's runtime folder (its sockets; a short path: a Unix socket's may not pass 107 bytes).

    The sandbox may write there. With a memory cgroup it is a tmpfs (``/dev/shm``), so that what
    a kernel writes counts against the job's memory; without one, on disk, where each file
    written is capped by the per-process file size limit but their number is not.
    """
    in_memory = group is not None and "memory" in group.controllers and Path("/dev/shm").is_dir()
    prefix = f"{RUNTIME_PREFIX}{os.getpid()}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/dev/shm" if in_memory else None))


def remove_stale_runtimes() -> None:
    """Remove the runtime folders of graders killed before they could (a dead worker): in /dev/shm
    they hold memory. Only those whose grader is gone and that nothing touched for two hours."""
    for parent in {Path("/dev/shm"), Path(tempfile.gettempdir())}:
        for folder in parent.glob(f"{RUNTIME_PREFIX}*"):
            owner = folder.name[len(RUNTIME_PREFIX) :].split("-")[0]
            try:
                untouched = time.time() - folder.lstat().st_mtime > STALE_SECONDS
            except OSError:
                continue
            if owner.isdigit() and not limits.alive(int(owner)) and untouched:
                shutil.rmtree(folder, ignore_errors=True)


# SQLite refuses a writer while another holds the lock for longer than its busy timeout.
GRADEBOOK_CONTENTION = "database is locked"


def flags_file(settings: Settings, student: str, assignment: str) -> Path:
    """Where a job's worker writes its flags: inside the course folder, which the sandbox hides."""
    return settings.root / STAGING / "flags" / student / f"{assignment}.jsonl"


def run_worker(settings: Settings, student: str, assignment: str, runtime: Path, group=None):
    """Autograde and write feedback for one staged submission in a fresh worker process."""
    from convae.grading import worker

    argv = ["convae.grading.worker", str(settings.root), assignment, student]
    argv.append(json.dumps(worker_overrides(settings, runtime)))
    env = worker_environment(
        settings,
        runtime,
        staged_submission(settings.root, student, assignment),
        flags_file(settings, student, assignment),
        group,
    )
    logs = flags_file(settings, student, assignment).with_suffix("")  # hidden from the sandbox, as the flags
    logs.mkdir(parents=True, exist_ok=True)
    return worker.run(argv, env, settings.root, logs, settings.job_timeout)


def grade_one(settings: Settings, student: str, assignment: str) -> JobResult:
    """Stage, autograde and write feedback for one submission; never raises."""
    result = JobResult(student, assignment)
    start = time.perf_counter()
    autograded = settings.root / "autograded" / student / assignment
    flags = flags_file(settings, student, assignment)
    flags.parent.mkdir(parents=True, exist_ok=True)
    flags.unlink(missing_ok=True)
    runtime = group = None
    try:
        group = job_group(settings, f"{os.getpid()}-{student}-{assignment}-{time.monotonic_ns()}")
        runtime = runtime_folder(group)
        connection_files(runtime).mkdir()
        result.flags += stage_submission(settings.root, student, assignment)
        proc = run_worker(settings, student, assignment, runtime, group)
        if proc.returncode != 0 and GRADEBOOK_CONTENTION in proc.stderr:
            result.flags.append("gradebook busy, graded again")
            proc = run_worker(settings, student, assignment, runtime, group)
        expected = sorted((settings.root / "release" / assignment).glob("*.ipynb"))
        graded = sorted(autograded.glob("*.ipynb")) if autograded.exists() else []
        result.flags += execute.read_flags(flags)
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
        if runtime is not None:
            sandbox.stop_server(runtime)  # the job's kernel server, started by its first kernel
            shutil.rmtree(runtime, ignore_errors=True)
            shutil.rmtree(connection_files(runtime), ignore_errors=True)
        if group is not None:
            usage = group.close()
            result.flags += limits.flags(usage, group.limits, group.controllers)
            result.usage = usage.summary()
    result.seconds = time.perf_counter() - start
    return result


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
    commands.environment_bin_on_path()
    url = commands.gradebook_url(settings.root, settings.db_url)
    with commands.gradebook(url) as gradebook:
        known = {a.name for a in gradebook.assignments}
    db_args = [f"--CourseDirectory.db_url={settings.db_url}"] if settings.db_url else []
    for assignment in commands.assignments(settings.root):
        if assignment not in known:
            commands.nbgrader(settings.root, "generate_assignment", assignment, "--force", *db_args)
    with commands.gradebook(url) as gradebook:
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
    settings, _ = machine_settings(settings, jobs)
    results = []
    if settings.judge_socket is None:
        settings = replace(settings, judge_socket=judge.process_server().path)
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


def machine_settings(settings: Settings, jobs: int | None = None) -> tuple[Settings, str | None]:
    """``settings`` with what depends on this machine filled in: kernel threads (cores / jobs) and
    the cgroup controllers a job can have here; with the reason some cannot be had (None: all can)."""
    problem = None
    if settings.kernel_threads is None:  # parallel kernels that each use every core fight over them
        jobs = jobs or os.cpu_count() or 1
        settings = replace(settings, kernel_threads=max(1, (os.cpu_count() or 1) // jobs))
    remove_stale_runtimes()
    if settings.cgroups is None:
        usable, problem = limits.probe(job_limits(settings))
        settings = replace(settings, cgroups=tuple(sorted(set().union(*(h.controllers for h in usable)))))
    return settings, problem


def sandbox_setting(mode: str) -> tuple[bool, str]:
    """Resolve ``--sandbox on|off`` (``auto``: the bundled example class) to (enabled, a sentence).

    ``grade`` never runs students' code unsandboxed unless told to (``off``); ``main`` grades
    the bundled example class, our own code, without a sandbox where there is none (``auto``).
    """
    if mode == "off":
        return False, "sandbox: OFF (requested) -- student code runs with your permissions"
    reason = sandbox.probe()
    if reason is None:
        return True, "sandbox: on (bubblewrap: no network, course folder hidden)"
    if mode == "on":
        raise SystemExit(
            f"sandbox requested but unavailable: {reason}. Nothing was graded; "
            "`--sandbox off` grades without it, with student code running as you."
        )
    return False, (
        f"sandbox: UNAVAILABLE ({reason}) -- the bundled example class (our own code) is graded "
        "unsandboxed; `grade` refuses real submissions without a sandbox unless told `--sandbox off`"
    )


def grading_note(settings: Settings, sandbox_note: str, cgroup_problem: str | None = None) -> str:
    """The sandbox line with the limits in force: what is enforced, and how."""
    notes = "; ".join(limit_notes(settings, cgroup_problem))
    if sandbox_note.endswith(")"):
        return f"{sandbox_note[:-1]}; {notes})"
    return f"{sandbox_note}; {notes}"


def cluster_note(settings: Settings) -> str:
    """What the coordinator asks of every worker; each enforces it with what its machine has."""
    wanted = job_limits(settings)
    cpus = f"{wanted.cpus:g} CPU" if settings.job_cpus is not None else "cores / jobs of CPU"
    asked = f"{mib(wanted.memory)} memory, {count(wanted.pids)} processes and threads, {cpus}"
    if settings.sandbox:
        head = "sandbox: required of every worker (a worker that cannot sandbox refuses the job)"
    else:
        head = "sandbox: OFF (requested) -- student code runs with each worker's permissions"
    budget = f"{settings.notebook_seconds} s per notebook" if settings.notebook_seconds else "no time budget"
    return f"{head}; per job, by each worker's cgroups where it has them: {asked}; {budget}"


def limit_notes(settings: Settings, cgroup_problem: str | None = None) -> list[str]:
    wanted = job_limits(settings)
    held = set(settings.cgroups or ())
    by_cgroup = [
        text
        for name, text in (
            ("memory", f"{mib(wanted.memory)} memory"),
            ("pids", f"{count(wanted.pids)} processes and threads"),
            ("cpu", f"{wanted.cpus:g} CPU" if wanted.cpus else "no CPU cap"),
        )
        if name in held
    ]
    notes = []
    if by_cgroup:
        versions = sorted({f"v{h.version}" for h in limits.hierarchies() if h.controllers & held})
        notes.append(f"job limits by cgroup {'/'.join(versions)}: {', '.join(by_cgroup)}")
    unheld = [name for name in limits.CONTROLLERS if name not in held]
    if unheld:
        why = f" ({cgroup_problem})" if cgroup_problem else ""
        notes.append(f"no cgroup for {', '.join(unheld)}{why}")
        if "memory" in unheld:
            notes.append("the job's total memory is not limited")
        if "cpu" in unheld:
            notes.append("its CPU share is not limited")
        if "pids" in unheld and settings.sandbox and wanted.pids:
            root = os.geteuid() == 0
            notes.append(
                f"processes by RLIMIT_NPROC {wanted.pids} per kernel"
                + (" (not binding: grading as root, which it exempts)" if root else "")
            )
    if settings.sandbox:
        tmp = f"/tmp and /dev/shm {mib(settings.tmp_size)} each" if settings.tmp_size else "/tmp unlimited"
        scratch = f"scratch {mib(settings.scratch_size)}" if settings.scratch_size else "scratch unlimited"
        notes.append(f"{tmp}, {scratch} beyond the submission (tmpfs sizes)")
        notes.append(
            f"per process: {mib(settings.memory)} address space, {settings.cpu_seconds} s CPU, "
            f"{mib(sandbox.DEFAULT_FILE_SIZE)} per file"
        )
    budget = settings.notebook_seconds
    notes.append(f"{budget} s per notebook" if budget else "no time budget per notebook")
    return notes


def mib(size: int) -> str:
    return f"{size // MIB} MiB" if size else "unlimited"


def count(value: int) -> str:
    return str(value) if value else "unlimited"
