"""A class graded across machines, on Dask distributed.

The job is the same as on one machine: one student's assignment (``pipeline.grade_one``).
- The **coordinator** (``python -m convae grade --cluster tcp://HOST:8786 --db postgresql://...``)
  checks each worker's course version, fills the shared PostgreSQL gradebook as local grading does,
  sends every job with the student's submitted files as a checksummed tarball, writes each graded
  notebook folder and feedback folder that comes back into the course folder, and prints the same
  report, table and exit code as local grading.
- A **worker** (``python -m convae.grading.cluster worker tcp://HOST:8786 --course CHECKOUT``, which
  runs ``dask worker`` with this module preloaded) holds a checkout of the course, starts one judge
  server for its life, and grades each job in a scratch copy of its checkout, sandboxed as locally,
  into the shared gradebook, each job in its own cgroups where the machine allows (``limits``), so
  that a job that exhausts its memory or processes ends inside its limits, not the worker's. A
  worker whose course version (a hash of ``source/``, ``release/`` and the package) is not the
  coordinator's refuses the job, saying so; so does a worker that cannot sandbox when the
  coordinator asked for the sandbox.

What Dask gives: a job whose worker dies is run again on another worker, at most
``distributed.scheduler.allowed-failures`` times (a job that kills every worker it lands on ends as
failed); a job that fails because of the submission is a failed result, never an exception, so it
is not run again. The gradebook holds one submission per student and assignment whatever the number
of attempts (nbgrader's autograde replaces it), and only the attempt whose result comes back writes
files into the course folder.

What crosses: the coordinator's job (names, settings, the tarball) and the worker's answer (a
report row and two tarballs), produced by our code on both sides; nothing from a student's process.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import socket
import sys
import tarfile
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from convae.grading import commands, judge, limits, pipeline, sandbox
from convae.grading.report import JobResult, write_report

COURSE_FILES = ("source", "release", "nbgrader_config.py")
CONNECT_SECONDS = 15
# Dask's own bookkeeping, made quieter: its statistical profiler, its 20 ms event-loop tick and its
# 0.5 s system monitor cost an idle scheduler and two workers about 13 % of a core here; grading
# jobs need none of them (measured: 2.6 s of CPU in 20 s idle, 0.6 s with these settings).
QUIET = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "2s",
}
# The names of the launcher's environment, so that a worker can undo what Dask's nanny adds before
# it starts the worker process (``distributed.nanny.pre-spawn-environ``: one OpenMP thread and an
# aggressive malloc trim), which would otherwise reach every student kernel: kernels on the cluster
# would run with one thread whatever ``--jobs`` says, and with another allocator than local grading.
LAUNCH_ENVIRON = "CONVAE_LAUNCH_ENVIRON"


class ClusterUnreachable(RuntimeError):
    """The scheduler did not answer."""


class CourseVersionMismatch(RuntimeError):
    """A worker holds another version of the course than the coordinator."""


class WorkerCannotSandbox(RuntimeError):
    """The coordinator asked for the sandbox and this worker cannot make one."""


class DamagedShipment(RuntimeError):
    """A job's files did not arrive as they were sent."""


# --- what is graded: the course's version, and files in transit ----------------------------------


def course_version(root: Path) -> str:
    """A hash of ``source/``, ``release/``, ``nbgrader_config.py`` and the ``convae`` package: what
    decides every grade (the configuration holds the time limits and the late policy)."""
    import convae

    package = Path(convae.__file__).resolve().parent
    files = [(root, root / "nbgrader_config.py")]
    for base, folder in ((root, root / "source"), (root, root / "release"), (package.parent, package)):
        files += [(base, path) for path in sorted(folder.rglob("*"))]
    digest = hashlib.sha256()
    for base, path in files:
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def copy_course_files(root: Path, target: Path) -> Path:
    """The files a worker grades with (``COURSE_FILES``), from the course at ``root`` into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    for name in COURSE_FILES:
        source = root / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target / name)
    return target


def pack(folder: Path) -> bytes:
    """A folder as a gzipped tarball (empty when the folder does not exist)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                tar.add(path, arcname=str(path.relative_to(folder)), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> None:
    """Extract a tarball made by ``pack``; only plain files and folders, inside ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Job:
    student: str
    assignment: str
    files: bytes  # submitted/<student>/<assignment>/, packed
    checksum: str
    version: str  # the coordinator's course version
    settings: dict = field(default_factory=dict)  # pipeline.Settings fields that travel


TRAVELLING_SETTINGS = (
    "sandbox",
    "timeout",
    "db_url",
    "memory",
    "cpu_seconds",
    "job_timeout",
    "job_memory",
    "job_pids",
    "job_cpus",
    "tmp_size",
    "scratch_size",
    "notebook_seconds",
)


# --- the worker's side ------------------------------------------------------------------------------


class CourseWorker:
    """What a worker process holds: its course checkout, that checkout's version, a judge server,
    and what this machine can enforce (the sandbox, the cgroups that hold each job)."""

    def __init__(self, root: Path, kernel_threads: int | None = None):
        self.root = root.resolve()
        self.kernel_threads = kernel_threads
        self.version = course_version(self.root)
        self.sandbox_problem = sandbox.probe()
        pipeline.remove_stale_runtimes()
        usable, _ = limits.probe(limits.Limits())
        self.cgroups = tuple(sorted(set().union(*(h.controllers for h in usable))))
        self.judges = None

    def setup(self, worker):
        self.judges = judge.JudgeServer()

    def teardown(self, worker):
        if self.judges is not None:
            self.judges.stop()


_course_worker: list[CourseWorker] = []  # set in each worker process by dask_setup


def this_worker() -> tuple[CourseWorker, str]:
    from distributed import get_worker

    if not _course_worker:
        raise RuntimeError("this Dask worker was not started with --preload convae.grading.cluster")
    return _course_worker[0], get_worker().address


def worker_course_version(dask_worker=None) -> str:
    """Run on every worker by the coordinator (``client.run``) before it sends anything."""
    if not _course_worker:
        raise RuntimeError("this Dask worker was not started with --preload convae.grading.cluster")
    return _course_worker[0].version


def grade_remote(job: Job) -> dict:
    """Run on a worker: one job graded in a scratch copy of the worker's course."""
    plugin, address = this_worker()
    if plugin.version != job.version:
        raise CourseVersionMismatch(
            f"worker {address} has course version {plugin.version}, the coordinator {job.version}: "
            "update its checkout (source/, release/, convae) and restart it"
        )
    if job.settings.get("sandbox") and plugin.sandbox_problem:
        raise WorkerCannotSandbox(f"worker {address} cannot sandbox student code: {plugin.sandbox_problem}")
    if sha256(job.files) != job.checksum:
        raise DamagedShipment(f"the files of {job.student}/{job.assignment} arrived damaged")
    scratch = Path(tempfile.mkdtemp(prefix="convae-cluster-job-"))
    try:
        copy_course_files(plugin.root, scratch)
        unpack(job.files, scratch / "submitted" / job.student / job.assignment)
        settings = pipeline.Settings(
            scratch,
            judge_socket=plugin.judges.path,
            kernel_threads=plugin.kernel_threads,
            cgroups=plugin.cgroups,
            **job.settings,
        )
        pipeline.install_grading_kernel(scratch)
        result = pipeline.grade_one(settings, job.student, job.assignment)
        return {
            "result": asdict(result),
            "worker": address,
            "autograded": pack(scratch / "autograded" / job.student / job.assignment),
            "feedback": pack(scratch / "feedback" / job.student / job.assignment),
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def dask_setup(worker) -> None:
    """``dask worker --preload convae.grading.cluster``: this worker's course and judge server."""
    root = Path(os.environ.get("CONVAE_COURSE_ROOT", os.getcwd()))
    threads = os.environ.get("CONVAE_KERNEL_THREADS")
    undo_nanny_environ()
    plugin = CourseWorker(root, int(threads) if threads else None)
    plugin.setup(worker)
    _course_worker[:] = [plugin]


def undo_nanny_environ() -> None:
    """Grading jobs run in the environment the worker was launched with, as local grading does."""
    import dask

    launched = os.environ.get(LAUNCH_ENVIRON)
    if launched is None:  # started by hand with ``dask worker --preload``: leave it as it is
        return
    for name in dask.config.get("distributed.nanny.pre-spawn-environ", {}):
        if name not in launched.split(","):
            os.environ.pop(name, None)


def dask_teardown(worker) -> None:
    for plugin in _course_worker:
        plugin.teardown(worker)


# --- the coordinator's side -------------------------------------------------------------------


def connect(address: str):
    import dask
    from distributed import Client

    quiet = {"distributed.admin.tick.interval": "1s", "distributed.admin.system-monitor.interval": "2s"}
    dask.config.set(quiet)  # as the workers' QUIET, for the grader's own event loop

    refused = refused_at_once(address)
    if refused:
        raise ClusterUnreachable(f"the cluster scheduler at {address} does not answer ({refused})")
    try:
        return Client(address, timeout=CONNECT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ClusterUnreachable(f"the cluster scheduler at {address} does not answer ({error})") from None


def refused_at_once(address: str) -> str | None:
    """Why a plain TCP scheduler address cannot be reached, where that is certain at once (nothing
    listens there): dask's client would retry it for CONNECT_SECONDS. None: try dask's client."""
    from urllib.parse import urlsplit

    parts = urlsplit(address)
    if parts.scheme != "tcp" or not parts.hostname or not parts.port:
        return None
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=CONNECT_SECONDS).close()
    except (ConnectionRefusedError, socket.gaierror) as error:
        return f"{type(error).__name__}: {error}"
    except OSError:
        return None  # a timeout or a network error: dask's client tries again and says why
    return None


def grade_on_cluster(
    settings: pipeline.Settings, address: str, students=None, assignments=None, progress: bool = True
) -> list[JobResult]:
    """Grade every selected submission on the cluster at ``address``; the same results as local grading."""
    from distributed import as_completed
    from tqdm.auto import tqdm

    if not settings.db_url or settings.db_url.startswith("sqlite"):
        raise SystemExit(
            "cluster grading needs a gradebook every machine reaches: pass --db postgresql://..."
        )
    client = connect(address)  # before anything is written
    try:
        version = course_version(settings.root)
        versions = client.run(worker_course_version)
        if not versions:
            raise ClusterUnreachable(f"no grading worker is connected to the scheduler at {address}")
        matching = [worker for worker, v in versions.items() if v == version]
        refusals = [
            f"worker {worker} refused: its course version is {v}, the coordinator's {version}"
            for worker, v in versions.items()
            if v != version
        ]
        todo = pipeline.submissions(settings.root, students, assignments)
        pipeline.ensure_gradebook(settings, students=sorted({student for student, _ in todo}))
        travelling = {name: getattr(settings, name) for name in TRAVELLING_SETTINGS}
        futures = {}
        for student, assignment in todo:
            files = pack(settings.root / "submitted" / student / assignment)
            job = Job(student, assignment, files, sha256(files), version, travelling)
            # Unrestricted jobs wait in the scheduler's queue and go to whichever worker is free;
            # restricted ones are assigned at once. With no worker at the coordinator's version,
            # the jobs go anywhere and are refused there.
            only = matching if refusals and matching else None
            future = client.submit(grade_remote, job, pure=False, workers=only)
            futures[future] = (student, assignment)
        results = []
        with tqdm(total=len(futures), desc="grading", unit="submission", disable=not progress) as bar:
            for future in as_completed(list(futures), loop=client.loop):
                student, assignment = futures[future]
                result = collect(settings.root, future, student, assignment)
                if refusals and not result.ok:
                    result.flags += refusals
                results.append(result)
                bar.set_postfix_str(f"{student}/{assignment} {result.status}")
                bar.update(1)
    finally:
        client.close()
    results.sort(key=lambda r: (r.student, r.assignment))
    write_report(results, settings.root / "autograded" / "grading_report.csv")
    return results


def collect(root: Path, future, student: str, assignment: str) -> JobResult:
    """One job's answer: its files written into the course folder, its report row returned."""
    try:
        answer = future.result()
    except (CourseVersionMismatch, WorkerCannotSandbox) as error:
        return JobResult(student, assignment, ok=False, flags=[f"refused: {error}"])
    except Exception as error:  # noqa: BLE001 -- e.g. KilledWorker: the job killed every worker it met
        return JobResult(
            student, assignment, ok=False, flags=[f"cluster error: {type(error).__name__}: {error}"]
        )
    result = JobResult(**answer["result"])
    for kind in ("autograded", "feedback"):
        target = root / kind / student / assignment
        shutil.rmtree(target, ignore_errors=True)
        if result.ok:
            unpack(answer[kind], target)
    return result


# --- starting a worker --------------------------------------------------------------------------


def worker_command(scheduler: str, nworkers: int, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "distributed.cli.dask_worker",
        scheduler,
        "--nthreads",
        "1",
        "--nworkers",
        str(nworkers),
        "--no-dashboard",
        "--preload",
        "convae.grading.cluster",
        *extra,
    ]


def scheduler_command(port: int, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "distributed.cli.dask_scheduler",
        "--port",
        str(port),
        "--no-dashboard",
        *extra,
    ]


def main(argv: list[str]) -> int:
    """``python -m convae.grading.cluster scheduler|worker ...``: start one side of a grading cluster."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m convae.grading.cluster")
    sub = parser.add_subparsers(dest="command", required=True)
    scheduler = sub.add_parser("scheduler", help="the cluster's scheduler (one machine)")
    scheduler.add_argument("--port", type=int, default=8786)
    start = sub.add_parser("worker", help="grading workers for the scheduler at SCHEDULER (tcp://host:8786)")
    start.add_argument("scheduler")
    start.add_argument(
        "--course", type=Path, default=Path.cwd(), help="this machine's checkout of the course"
    )
    start.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="parallel jobs (default: one per core)"
    )
    args, extra = parser.parse_known_args(argv)  # the rest goes to dask (e.g. --host, --name, --no-nanny)
    commands.environment_bin_on_path()
    env = {**QUIET, **os.environ}
    if args.command == "scheduler":
        os.execve(sys.executable, scheduler_command(args.port, extra), env)
    env["CONVAE_COURSE_ROOT"] = str(args.course.resolve())
    env[LAUNCH_ENVIRON] = ",".join(sorted(os.environ))
    env.setdefault("CONVAE_KERNEL_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
    os.execve(sys.executable, worker_command(args.scheduler, args.jobs, extra), env)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
