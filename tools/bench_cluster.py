"""Cluster benchmark: class throughput on Dask with N workers against the local pool with N workers.

On this machine, in one run: a scratch course with a class of complete submissions, a throwaway
PostgreSQL gradebook (both modes need one a cluster can share), a Dask scheduler and N grading
workers on loopback. The class is graded alternately by the local pool and by the cluster, a fresh
database each time; it prints each time, the ratio, and what one job costs and moves, from which a
second machine's worth can be argued.

Usage: .venv/bin/python tools/bench_cluster.py [--class-size 12] [--workers 2] [--rounds 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_postgres_server():
    spec = importlib.util.spec_from_file_location(
        "postgres_server", Path(__file__).with_name("postgres_server.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start(cmd, log: Path, env=None) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True, env=env
    )  # noqa: SIM115


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy: a mode's cost in CPU, which on a quiet machine
    is what it spends (a process tree would miss the daemonised kernel servers)."""
    import psutil

    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)


def wait_for_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port}")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--class-size", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()

    from distributed import Client

    from convae import course
    from convae.grading import cluster, pipeline, sandbox

    postgres_server = load_postgres_server()
    scratch = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    root = scratch / "course"
    root.mkdir()
    for name in ("source", "nbgrader_config.py", "examples"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
    course.generate_release(root)
    students = [f"s{i:02d}" for i in range(args.class_size)]
    for student in students:
        course.build_submission_for_all(root, student, course.SOLUTION)
    checkout = cluster.copy_course_files(root, scratch / "worker-checkout")

    database = postgres_server.PostgresServer()
    port = postgres_server.free_port()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        start(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ]
            + ["--no-dashboard"],
            scratch / "scheduler.log",
        )
    ]
    try:
        wait_for_port(port)
        worker = [
            sys.executable,
            "-m",
            "convae.grading.cluster",
            "worker",
            address,
            "--course",
            str(checkout),
        ]
        processes.append(start([*worker, "--jobs", str(args.workers)], scratch / "workers.log"))
        with Client(address, timeout=30, set_as_default=False) as client:
            client.wait_for_workers(args.workers, timeout=180)
        enabled = sandbox.probe() is None
        times = {"local pool": [], "cluster": []}
        cpu = {mode: [] for mode in times}
        job_seconds = {mode: [] for mode in times}
        for round_ in range(args.rounds):
            for mode in times:
                url = database.database(f"bench_{mode.replace(' ', '_')}_{round_}")
                settings = pipeline.Settings(root, sandbox=enabled, db_url=url)
                shutil.rmtree(root / "autograded", ignore_errors=True)
                shutil.rmtree(root / "feedback", ignore_errors=True)
                begin, begin_cpu = time.perf_counter(), machine_cpu_seconds()
                if mode == "cluster":
                    results = cluster.grade_on_cluster(settings, address, progress=False)
                else:
                    results = pipeline.grade_class(settings, jobs=args.workers, progress=False)
                times[mode].append(time.perf_counter() - begin)
                cpu[mode].append(machine_cpu_seconds() - begin_cpu)
                job_seconds[mode] += [r.seconds for r in results]
                assert all(r.ok for r in results), [r.flags for r in results if not r.ok]
        jobs = len(students) * len(list((root / "release").iterdir()))
        for mode, seconds in times.items():
            best = min(seconds)
            print(
                f"{mode}, {args.workers} workers, class of {len(students)} ({jobs} jobs): {best:.0f} s, "
                f"{best / len(students):.1f} s per complete submission"
            )
        print(f"cluster / local pool: {min(times['cluster']) / min(times['local pool']):.2f}")
        for mode in times:
            mean_job = sum(job_seconds[mode]) / len(job_seconds[mode])
            print(
                f"{mode}: {min(cpu[mode]) / jobs:.1f} CPU-s per job (the whole machine's), "
                f"{mean_job:.1f} s per job inside grade_one"
            )
        print(f"CPU, cluster / local pool: {min(cpu['cluster']) / min(cpu['local pool']):.2f}")
        shipped = [
            len(cluster.pack(root / "submitted" / s / a)) for s in students for a in ("ps1", "ps2", "ps3")
        ]
        back = [
            len(cluster.pack(root / kind / s / a))
            for s in students
            for a in ("ps1", "ps2", "ps3")
            for kind in ("autograded", "feedback")
        ]
        per_job = min(times["local pool"]) * args.workers / jobs
        sent, received = sum(shipped) / len(shipped) / 1e3, sum(back) / len(shipped) / 1e3
        print(
            f"per job: {per_job:.1f} s of a worker; shipped to it {sent:.0f} kB on average, "
            f"sent back {received:.0f} kB (graded notebooks and feedback)"
        )
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        database.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
