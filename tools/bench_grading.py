"""Grading benchmark: seconds per submission, overhead against plain execution, class throughput.

In one run, on a scratch copy of the course:
1. import cost of nbgrader with and without the optional rfc3987_syntax import the worker skips;
2. kernel start-up to a first optimizer step: a plain ipykernel against one forked by the
   grading job's kernel server (``convae.kernel_server``), interleaved;
3. executing every notebook of one complete submission directly (nbclient, grading mode);
4. grading that submission alone (canonicalise, sandboxed autograde, feedback), and the ratio;
5. a class of N complete submissions graded with 1 worker, then with 2.
Usage: .venv/bin/python tools/bench_grading.py [--class-size 30] [--sandbox auto|off]
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


def kernel_startup_seconds(root: Path, runtime: Path, kernel: str, sandboxed: bool) -> float:
    """Seconds from asking for a kernel to the end of its first optimizer step."""
    from jupyter_client import KernelManager

    from convae import sandbox

    workdir = root / "autograded" / "bench"
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), **{sandbox.RUNTIME_DIR: str(runtime)})
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

    from convae import grading, sandbox

    os.environ["JUPYTER_PATH"] = str(grading.install_grading_kernel(root))
    runtime = Path(tempfile.mkdtemp(prefix="convae-bench-"))  # short, as Unix socket paths must be
    kernel_startup_seconds(root, runtime, grading.GRADING_KERNEL, sandboxed)  # starts the server
    plain, forked = [], []
    for _ in range(rounds):  # interleaved, so machine load hits both alike
        plain.append(kernel_startup_seconds(root, runtime, "python3", False))
        forked.append(kernel_startup_seconds(root, runtime, grading.GRADING_KERNEL, sandboxed))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--class-size", type=int, default=30)
    parser.add_argument("--sandbox", choices=["auto", "on", "off"], default="auto")
    args = parser.parse_args()

    from convae import course, grading

    enabled, note = grading.sandbox_setting(args.sandbox)
    print(note)
    print(
        f"nbgrader import: {import_seconds(False):.1f} s as installed, "
        f"{import_seconds(True):.1f} s with rfc3987_syntax skipped (grading worker)"
    )

    root = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    for name in ("source", "nbgrader_config.py", "examples"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, root / name)
    course.generate_release(root)
    compare_kernel_startup(root, enabled)
    course.build_submission_for_all(root, "solo", course.SOLUTION)
    notebooks_per_submission = len(list((root / "submitted" / "solo").glob("*/*.ipynb")))

    direct = execute_directly(root, "solo")
    settings = grading.Settings(root, sandbox=enabled)
    start = time.perf_counter()
    results = grading.grade_class(settings, jobs=1, students=["solo"], progress=False)
    graded = time.perf_counter() - start
    assert all(r.ok for r in results), [r.flags for r in results]
    print(
        f"one complete submission ({notebooks_per_submission} notebooks): executed directly {direct:.1f} s, "
        f"graded {graded:.1f} s (ratio {graded / direct:.2f})"
    )

    students = [f"s{i:02d}" for i in range(args.class_size)]
    for student in students:
        course.build_submission_for_all(root, student, course.SOLUTION)
    for jobs in (1, 2):
        shutil.rmtree(root / "autograded", ignore_errors=True)
        start = time.perf_counter()
        results = grading.grade_class(settings, jobs=jobs, students=students, progress=False)
        elapsed = time.perf_counter() - start
        failed = sum(not r.ok for r in results)
        print(
            f"class of {len(students)} with {jobs} worker(s): {elapsed:.0f} s, "
            f"{elapsed / len(students):.1f} s per submission, {len(students) * 60 / elapsed:.1f} per minute"
            f"{f', {failed} FAILED' if failed else ''}"
        )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
