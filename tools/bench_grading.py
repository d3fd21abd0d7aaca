"""Grading benchmark: seconds per submission, the judge's cost, class throughput.

In one run, on a scratch copy of the course:
1. import cost of nbgrader with and without the optional rfc3987_syntax import the worker skips,
   and the CPU of one ``generate_assignment`` on a new gradebook through nbgrader's own script
   against ``python -m convae.grading.commands`` (how the course runs it), interleaved;
2. kernel start-up to a first optimizer step: a plain ipykernel against one forked by the
   grading job's kernel server (``convae.grading.kernel_server``), interleaved;
3. executing every notebook of one complete submission directly (nbclient, grading mode);
4. grading that submission alone, with the judge and without it (the test cells run in the
   student's kernel by nbgrader's own Execute, as before the judge), alternating, and the ratios;
5. a class of N complete submissions graded with each worker count, with the judge and without.
Usage: .venv/bin/python tools/bench_grading.py [--class-size 30] [--workers 1 2] [--rounds 3]
       [--sandbox auto|off]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def import_seconds(block_rfc3987: bool) -> float:
    prelude = "import sys; sys.modules['rfc3987_syntax'] = None; " if block_rfc3987 else ""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", prelude + "import nbgrader.apps"], check=True)
    return time.perf_counter() - start


FIRST_STEP = "import torch\ntorch.optim.Adam([torch.zeros(1, requires_grad=True)]).step()"


def generate_assignment_cpu(command: list[str]) -> float:
    """CPU seconds of ``generate_assignment ps1`` on a fresh copy of the course (a new gradebook)."""
    import resource

    root = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    for name in ("source", "nbgrader_config.py"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    args = ["generate_assignment", "ps1", "--force", f"--CourseDirectory.root={root}", "--log-level=WARN"]
    subprocess.run([*command, *args], cwd=root, check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(root)
    return after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def compare_nbgrader_commands(rounds: int = 3) -> None:
    import statistics

    from convae.grading import commands

    bin_dir = commands.environment_bin_on_path()
    script, ours = [], []
    for _ in range(rounds):  # interleaved, so machine load hits both alike
        script.append(generate_assignment_cpu([str(bin_dir / "nbgrader")]))
        ours.append(generate_assignment_cpu([str(bin_dir / "python"), "-m", "convae.grading.commands"]))
    a, b = statistics.median(script), statistics.median(ours)
    print(
        f"generate_assignment ps1 on a new gradebook, CPU (median of {rounds}): nbgrader's script "
        f"{a:.2f} s, python -m convae.grading.commands {b:.2f} s (ratio {b / a:.2f})"
    )


def kernel_startup_seconds(root: Path, runtime: Path, kernel: str, sandboxed: bool) -> float:
    """Seconds from asking for a kernel to the end of its first optimizer step."""
    from jupyter_client import KernelManager

    from convae.grading import kernel_server, sandbox

    workdir = root / "autograded" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), **{sandbox.RUNTIME_DIR: str(runtime)})
    env[kernel_server.PRELOAD_TRAINING] = "1"  # as for a job whose notebooks train
    if sandboxed:
        env["CONVAE_SANDBOX_HIDE"] = str(root)
    start = time.perf_counter()
    km = KernelManager(kernel_name=kernel, transport="ipc", ip=str(runtime / "kernel"))
    km.start_kernel(env=env, cwd=str(workdir))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    kc.execute_interactive(FIRST_STEP, timeout=120)
    elapsed = time.perf_counter() - start
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return elapsed


def compare_kernel_startup(root: Path, sandboxed: bool, rounds: int = 5) -> None:
    import statistics

    from convae.grading import pipeline, sandbox

    os.environ["JUPYTER_PATH"] = str(pipeline.install_grading_kernel(root))
    runtime = Path(tempfile.mkdtemp(prefix="convae-bench-"))  # short, as Unix socket paths must be
    kernel_startup_seconds(root, runtime, pipeline.GRADING_KERNEL, sandboxed)  # starts the server
    plain, forked = [], []
    for _ in range(rounds):  # interleaved, so machine load hits both alike
        plain.append(kernel_startup_seconds(root, runtime, "python3", False))
        forked.append(kernel_startup_seconds(root, runtime, pipeline.GRADING_KERNEL, sandboxed))
    sandbox.stop_server(runtime)
    shutil.rmtree(runtime)
    p, f = statistics.median(plain), statistics.median(forked)
    print(
        f"kernel start to first optimizer step (median of {rounds}): plain ipykernel {p:.2f} s, "
        f"forked by the kernel server{' (sandboxed)' if sandboxed else ''} {f:.2f} s (ratio {f / p:.2f})"
    )


def execute_directly(root: Path, student: str) -> float:
    """Run each submitted notebook top to bottom in a plain kernel, as a student would."""
    import nbclient

    from convae import notebooks

    os.environ["NBGRADER_EXECUTION"] = "autograde"
    start = time.perf_counter()
    for path in sorted((root / "submitted" / student).glob("*/*.ipynb")):
        nb = notebooks.read(path)
        client = nbclient.NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(path.parent)}},
        )
        client.execute()
    os.environ.pop("NBGRADER_EXECUTION")
    return time.perf_counter() - start


def in_kernel_overrides() -> dict:
    """The baseline: nbgrader's own Execute in place of the judge's; the course's other steps alike."""
    from convae.grading.commands import course_config

    steps = list(course_config(REPO).Autograde.autograde_preprocessors)
    steps[steps.index("convae.grading.execute.ResilientExecute")] = "nbgrader.preprocessors.Execute"
    return {"Autograde": {"autograde_preprocessors": steps}}


def grade_seconds(settings, students, jobs) -> float:
    from convae.grading import pipeline

    shutil.rmtree(settings.root / "autograded", ignore_errors=True)
    start = time.perf_counter()
    results = pipeline.grade_class(settings, jobs=jobs, students=students, progress=False)
    elapsed = time.perf_counter() - start
    assert all(r.ok for r in results), [r.flags for r in results if not r.ok]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--class-size", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds for one submission")
    parser.add_argument("--sandbox", choices=["auto", "on", "off"], default="auto")
    args = parser.parse_args()

    from convae import course
    from convae.grading import pipeline

    enabled, note = pipeline.sandbox_setting(args.sandbox)
    print(note)
    print(
        f"nbgrader import: {import_seconds(False):.1f} s as installed, "
        f"{import_seconds(True):.1f} s with rfc3987_syntax skipped (grading worker)"
    )
    compare_nbgrader_commands()

    root = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    for name in ("source", "nbgrader_config.py", "examples"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
    course.generate_release(root)
    compare_kernel_startup(root, enabled)
    course.build_submission_for_all(root, "solo", course.SOLUTION)
    notebooks_per_submission = len(list((root / "submitted" / "solo").glob("*/*.ipynb")))

    direct = execute_directly(root, "solo")
    judged = pipeline.Settings(root, sandbox=enabled)
    # The baseline starts no judge server (it would never be asked anything).
    in_kernel = pipeline.Settings(
        root, sandbox=enabled, nbgrader_overrides=in_kernel_overrides(), judge_socket=Path(os.devnull)
    )
    with_judge, without = [], []
    for _ in range(args.rounds):  # alternating, so that the machine's load falls on both alike
        with_judge.append(grade_seconds(judged, ["solo"], 1))
        without.append(grade_seconds(in_kernel, ["solo"], 1))
    best_with, best_without = min(with_judge), min(without)
    print(f"one complete submission ({notebooks_per_submission} notebooks), best of {args.rounds}:")
    print(f"  executed directly {direct:.1f} s")
    print(f"  graded with the judge {best_with:.1f} s, test cells in the kernel {best_without:.1f} s")
    print(f"  judge / in-kernel {best_with / best_without:.2f}, judge / direct {best_with / direct:.2f}")

    students = [f"s{i:02d}" for i in range(args.class_size)]
    for student in students:
        course.build_submission_for_all(root, student, course.SOLUTION)
    for jobs in args.workers:
        seconds = {
            "judge": grade_seconds(judged, students, jobs),
            "in-kernel": grade_seconds(in_kernel, students, jobs),
        }
        for name, elapsed in seconds.items():
            per_minute = len(students) * 60 / elapsed
            print(
                f"class of {len(students)}, {jobs} worker(s), {name}: {elapsed:.0f} s, "
                f"{elapsed / len(students):.1f} s per submission, {per_minute:.1f} per minute"
            )
        print(f"  judge / in-kernel with {jobs} worker(s): {seconds['judge'] / seconds['in-kernel']:.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
