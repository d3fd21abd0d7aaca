"""Grading across machines on Dask distributed: real processes on loopback, started and stopped here.

A scheduler, grading workers (``python -m convae.grading.cluster worker``, each with its own
checkout of the course) and a PostgreSQL gradebook; the coordinator is this process. The class is
eight submissions of ps1/conv_arithmetic with different grades, so that a lost or doubled job shows.
"""

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import REPO, copy_course, load_tool, release_course, require_system

from convae import course, notebooks
from convae.grading import cluster, pipeline, sandbox

postgres_server = load_tool("postgres_server")
pytestmark = pytest.mark.system("postgresql")

CLASS = {  # student -> the example student whose answers they hand in
    "ada": "example-complete",
    "bob": "example-partial",
    "cy": "example-wrong",
    "dee": "example-blank",
    "eve": "example-complete",
    "fay": "example-partial",
    "gus": "example-wrong",
    "hal": "example-complete",
}


def build_course(path: Path) -> Path:
    root = copy_course(path)
    shutil.rmtree(root / "source" / "ps2")
    shutil.rmtree(root / "source" / "ps3")
    for notebook in (root / "source" / "ps1").glob("*.ipynb"):
        if notebook.stem != "conv_arithmetic":
            notebook.unlink()
    release_course(root)
    examples = course.load_example_class(root)
    for student, example in CLASS.items():
        course.build_submission(root, student, examples[example], "ps1")
    (root / "gradebook.db").unlink(missing_ok=True)  # generate_assignment made one; the class uses PostgreSQL
    return root


def checkout(root: Path, target: Path) -> Path:
    """A worker's own copy of the course: what it grades with."""
    return cluster.copy_course_files(root, target)


class Cluster:
    """A scheduler and its workers on loopback."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = postgres_server.free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes = []
        scheduler = [sys.executable, "-m", "convae.grading.cluster", "scheduler", "--port", str(self.port)]
        scheduler += ["--host", "127.0.0.1"]
        self.start(scheduler, "scheduler")
        deadline = time.monotonic() + 60
        while not port_open(self.port):
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.2)

    def start(self, cmd, name):
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 -- the process's whole life
        process = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
        self.processes.append(process)
        return process

    def add_worker(self, checkout_root: Path, name: str, *extra: str):
        cmd = [sys.executable, "-m", "convae.grading.cluster", "worker", self.address]
        cmd += ["--course", str(checkout_root), "--name", name, *(extra or ("--jobs", "1", "--no-nanny"))]
        return self.start(cmd, name)

    def wait_for_workers(self, n: int):
        from distributed import Client

        with Client(self.address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(n, timeout=120)

    def stop(self):
        for process in self.processes:
            kill(process)


def kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def grades(root, url):
    return {(g.student, g.notebook): g.score for g in course.notebook_grades(root, url)}


@pytest.fixture(scope="module")
def local_grades():
    """What local grading gives this class: the example class's expected grades (which
    ``test_example_class.py`` checks against a local run), student by student."""
    with open(REPO / "examples" / "expected_grades.csv") as f:
        expected = {
            row["student"]: float(row["score"])
            for row in csv.DictReader(f)
            if row["assignment"] == "ps1" and row["notebook"] == "conv_arithmetic"
        }
    return {(student, "conv_arithmetic"): expected[example] for student, example in CLASS.items()}


@pytest.fixture
def cluster_of_two(tmp_path):
    root = build_course(tmp_path / "coordinator")
    running = Cluster(tmp_path)
    workers = {name: running.add_worker(checkout(root, tmp_path / name), name) for name in ("w1", "w2")}
    try:
        running.wait_for_workers(2)
        yield root, running, workers
    finally:
        running.stop()


def settings_for(root, url):
    return pipeline.Settings(root, sandbox=sandbox.probe() is None, db_url=url)


def test_a_class_graded_on_two_workers_gets_the_local_grades(cluster_of_two, postgres, local_grades):
    root, running, _ = cluster_of_two
    url = postgres.database("cluster_equal")
    results = cluster.grade_on_cluster(settings_for(root, url), running.address, progress=False)
    assert [r.ok for r in results] == [True] * len(CLASS), [r.flags for r in results]
    assert grades(root, url) == local_grades
    for student in CLASS:
        assert (root / "autograded" / student / "ps1" / "conv_arithmetic.ipynb").exists()
        assert (root / "feedback" / student / "ps1" / "conv_arithmetic.html").exists()
    report = (root / "autograded" / "grading_report.csv").read_text().splitlines()
    assert len(report) == 1 + len(CLASS)


def executing(address: str, worker: str) -> bool:
    """Whether the named worker is running a job right now."""
    from distributed import Client

    with Client(address, timeout=30, set_as_default=False) as client:
        counts = client.run(lambda dask_worker: dask_worker.state.executing_count)
        names = {w: info["name"] for w, info in client.scheduler_info()["workers"].items()}
    return any(names[w] == worker and n > 0 for w, n in counts.items())


def test_a_worker_killed_mid_job_loses_nothing_and_doubles_nothing(cluster_of_two, postgres, local_grades):
    from nbgrader.api import Gradebook

    root, running, workers = cluster_of_two
    url = postgres.database("cluster_kill")
    outcome = {}
    run = threading.Thread(
        target=lambda: outcome.update(
            results=cluster.grade_on_cluster(settings_for(root, url), running.address, progress=False)
        )
    )
    run.start()
    deadline = time.monotonic() + 120
    while not executing(running.address, "w1"):
        assert time.monotonic() < deadline, "w1 never started a job"
        time.sleep(0.5)
    time.sleep(3)  # well inside its job: nbgrader and the kernel are running
    assert executing(running.address, "w1")
    kill(workers["w1"])
    run.join(timeout=600)
    results = outcome["results"]
    assert [r.ok for r in results] == [True] * len(CLASS), [r.flags for r in results]
    assert grades(root, url) == local_grades
    with Gradebook(url) as gradebook:
        graded = [s.student.id for s in gradebook.assignment_submissions("ps1")]
    assert sorted(graded) == sorted(CLASS), "every submission once in the gradebook"


def test_a_resource_attack_ends_inside_its_job_and_is_not_run_again(tmp_path, postgres):
    """A job that runs into its memory limit loses a process of its own, not its worker: Dask, which
    runs a job again only when its worker dies, does not send it to the next one."""
    require_system("bubblewrap")
    require_system("cgroups")
    attacks = load_tool("limit_attacks")
    root = build_course(tmp_path / "coordinator")
    for student in CLASS:
        if student not in ("ada", "bob"):
            shutil.rmtree(root / "submitted" / student)
    course.build_submission(root, "mallory", course.SOLUTION, "ps1")
    path = root / "submitted" / "mallory" / "ps1" / "conv_arithmetic.ipynb"
    nb = notebooks.read(path)
    attacks.prepend(attacks.FRESH_PROCESSES)(nb)  # fresh interpreters of 1.25 GiB each, up to 10 GiB
    notebooks.write(nb, path)
    running = Cluster(tmp_path)
    workers = {name: running.add_worker(checkout(root, tmp_path / name), name) for name in ("w1", "w2")}
    try:
        running.wait_for_workers(2)
        url = postgres.database("cluster_limits")
        settings = replace(settings_for(root, url), job_memory=1536 * 2**20)
        results = {r.student: r for r in cluster.grade_on_cluster(settings, running.address, progress=False)}
        processing = running_log(running.address)
        alive = {name: worker.poll() is None for name, worker in workers.items()}
    finally:
        running.stop()
    assert all(r.ok for r in results.values()), {s: r.flags for s, r in results.items()}
    assert any("memory limit hit" in flag for flag in results["mallory"].flags), results["mallory"].flags
    assert grades(root, url)[("mallory", "conv_arithmetic")] == attacks.FULL
    assert alive == {"w1": True, "w2": True}
    assert sorted(processing.values()) == [1, 1, 1], processing  # each job ran once


def running_log(address: str) -> dict:
    """How many times the scheduler sent each grading job to a worker."""
    from distributed import Client

    def transitions(dask_scheduler):
        return [(str(t.key), t.finish) for t in dask_scheduler.transition_log]

    with Client(address, timeout=30, set_as_default=False) as client:
        log = client.run_on_scheduler(transitions)
    counts = {}
    for key, finish in log:
        if "grade_remote" in key and finish == "processing":
            counts[key] = counts.get(key, 0) + 1
    return counts


def test_a_worker_with_another_course_version_refuses_and_the_report_says_why(tmp_path, postgres):
    root = build_course(tmp_path / "coordinator")
    stale = checkout(root, tmp_path / "stale")
    intro = stale / "source" / "ps1" / "conv_arithmetic.ipynb"
    nb = notebooks.read(intro)
    nb.cells[0].source += "\n\nAn older version of this introduction."
    notebooks.write(nb, intro)
    running = Cluster(tmp_path)
    try:
        running.add_worker(stale, "stale")
        running.wait_for_workers(1)
        url = postgres.database("cluster_version")
        results = cluster.grade_on_cluster(settings_for(root, url), running.address, progress=False)
    finally:
        running.stop()
    assert results and not any(r.ok for r in results)
    for result in results:
        assert any("course version" in flag for flag in result.flags), result.flags
    report = (root / "autograded" / "grading_report.csv").read_text()
    assert "course version" in report and "failed" in report


NANNY_ENVIRON = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def test_grading_on_a_worker_runs_in_the_environment_it_was_launched_with(tmp_path, monkeypatch):
    """Dask's nanny starts its worker with one OpenMP thread and its own malloc settings; grading
    jobs (and so the student kernels) must not inherit them, or kernels on the cluster would run
    otherwise than local grading and ignore ``--jobs``."""
    from distributed import Client

    for name in NANNY_ENVIRON:
        monkeypatch.delenv(name, raising=False)
    root = build_course(tmp_path / "coordinator")
    running = Cluster(tmp_path)
    try:
        running.add_worker(checkout(root, tmp_path / "w"), "w", "--jobs", "2")  # with its nanny
        running.wait_for_workers(2)
        with Client(running.address, timeout=30, set_as_default=False) as client:
            seen = client.run(lambda: {name: os.environ.get(name) for name in NANNY_ENVIRON})
    finally:
        running.stop()
    assert len(seen) == 2
    assert all(environ == dict.fromkeys(NANNY_ENVIRON) for environ in seen.values()), seen


def test_an_unreachable_scheduler_is_a_clear_error_and_nothing_is_written(tmp_path, postgres):
    root = build_course(tmp_path / "coordinator")
    url = postgres.database("cluster_unreachable")
    address = f"tcp://127.0.0.1:{postgres_server.free_port()}"
    start = time.monotonic()
    with pytest.raises(cluster.ClusterUnreachable, match="does not answer"):
        cluster.grade_on_cluster(settings_for(root, url), address, progress=False)
    assert time.monotonic() - start < 10  # nothing listens there: refused at once, not retried for 15 s
    assert not (root / "autograded").exists() or not any((root / "autograded").iterdir())
    from sqlalchemy import create_engine, inspect

    assert inspect(create_engine(url)).get_table_names() == [], "the gradebook was touched"
    command = [
        sys.executable,
        "-m",
        "convae",
        "--root",
        str(root),
        "grade",
        "--cluster",
        address,
        "--db",
        url,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "does not answer" in proc.stderr and "nothing was graded" in proc.stderr
