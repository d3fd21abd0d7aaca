"""The student's side of a judged test, without Jupyter: a fork server of answer processes.

``python tests/student_side.py SOCKET`` imports torch and the course package once; for each
request it forks a process that executes the given cells (a notebook's setup cells and answers)
in a fresh namespace, as a kernel would, then serves one test cell through
``convae.grading.agent.serve``. The validity harness judges the test in its own process, so a
catalogued mistake is judged exactly as grading judges it: across a process boundary, by value.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

# What the notebooks' setup cells import, as the grading kernel server preloads it: a student
# process forks with it loaded instead of importing it again for every judged case.
PRELOAD = (
    "numpy",
    "torch",
    "torch.optim",
    "torch._dynamo",  # imported lazily by the first optimizer step
    "matplotlib",
    "convae.data",
    "convae.training",
    "convae.summary",
    "convae.pretrained",
    "convae.plotting",
    "convae.notebooks",
    "nbformat",
    "IPython.core.inputtransformer2",  # convae.notebooks.run_cells: a sibling notebook's cells
    "convae.grading.agent",
    "convae.grading.checks",
    "safetensors.torch",
)


def run_student(request: dict) -> None:
    """In the forked child: run the cells, then serve the judge; never returns."""
    code = 0
    try:
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        namespace = {"__name__": "__main__"}
        for name, source in request["cells"]:
            try:
                exec(compile(source, f"<{name}>", "exec"), namespace)
            except Exception:  # noqa: BLE001 -- as in a kernel: the cell failed, the next runs
                pass
        from convae.grading import agent

        agent.serve(request["agent"], request["token"], namespace, request["seed"])
    except BaseException:  # noqa: BLE001 -- the judge sees a closed channel
        code = 1
    os._exit(code)


def serve(path: Path) -> None:
    os.environ["MPLBACKEND"] = "Agg"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))
    listener.listen(16)
    for name in PRELOAD:
        __import__(name)
    import matplotlib.pyplot  # noqa: F401 -- the notebooks' imports cells import it
    import torch

    torch.set_num_threads(1)
    last = time.monotonic()
    while time.monotonic() - last < 600:  # a harness that died leaves no server behind for long
        ready, _, _ = select.select([listener], [], [], 1.0)
        _reap()
        if not ready:
            continue
        conn, _ = listener.accept()
        with conn:
            request = json.loads(conn.makefile().readline())
            pid = os.fork()
            if pid == 0:
                listener.close()
                run_student(request)
            conn.sendall(f"{pid}\n".encode())
        last = time.monotonic()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def spawn(server: Path, cells, agent: str, token: str, seed: int) -> int:
    """Ask the server for a student process; returns its pid."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(server))
        sock.sendall(
            (json.dumps({"cells": cells, "agent": agent, "token": token, "seed": seed}) + "\n").encode()
        )
        return int(sock.makefile().readline())


def kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    serve(Path(sys.argv[1]))
