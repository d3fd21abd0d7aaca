"""A fork server for grading kernels: ``python -m convae.grading.kernel_server SOCKET [--own-pid-namespace]``.

Every grading kernel used to import torch, its compiler front end (imported by the first
optimizer), matplotlib and ipykernel itself: 3-4 s of the same work in each of a submission's
notebooks. This server imports them once and forks a kernel per request, so a kernel starts in
a fraction of a second with the libraries already loaded. ``convae.grading.sandbox`` starts one server
per grading job (one student's assignment), inside that job's sandbox, and connects to it.

Protocol, on a Unix socket: the launcher sends one JSON line ``{"connection": <the kernel's
connection info>, "cwd": ..., "env": {...}}`` and waits; when the kernel exits the server
answers with its exit code (a line) and closes. If the launcher goes away (killed by the kernel
manager), the server kills that kernel's process group. ``{"shutdown": true}`` stops the server.

Isolation between kernels: each kernel is a fresh fork of the untouched server, so nothing one
notebook does in memory reaches the next. The server is not dumpable (``PR_SET_DUMPABLE`` 0):
a kernel cannot read or write its memory through ``/proc`` or ptrace. In its own PID namespace
(the sandbox) the server also kills every leftover process before it forks a new kernel and
when it stops.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import sys
import time
from pathlib import Path

# The libraries every course notebook imports. Not matplotlib.pyplot: importing it picks the
# inline backend, which must happen inside the kernel to hook into IPython's display.
PRELOAD = (
    "numpy",
    "torch",
    "torch.optim",
    "torch._dynamo",  # imported lazily by the first torch.optim step: 1.4 s
    "matplotlib",
    "matplotlib.figure",
    "matplotlib.backend_bases",
    "tqdm.auto",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "convae.data",
    "convae.training",
    "convae.summary",
    "convae.pretrained",
    "convae.grading.agent",  # what every test cell runs in the kernel while the judge grades it
    "safetensors.torch",
)
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
IDLE_SECONDS = 120  # a server whose grading job died without stopping it exits on its own
PR_SET_DUMPABLE = 4


def preload() -> None:
    # ipykernel selects the inline backend through MPLBACKEND; matplotlib reads it on import.
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    for name in PRELOAD:
        __import__(name)


def set_dumpable(dumpable: bool) -> None:
    """Whether processes of the same user may ptrace this one or open its ``/proc/<pid>/mem``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, int(dumpable), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def kill_leftovers() -> None:
    """Kill every process of this PID namespace but its init (1) and the server."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) not in (1, os.getpid()):
            try:
                os.kill(int(entry), signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_kernel(request: dict) -> None:
    """In the forked child: become the kernel described by ``request``; never returns."""
    try:
        os.setsid()  # its own process group, killed as a whole
        set_dumpable(True)  # an ordinary process again; the server stays closed
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        import matplotlib

        matplotlib.rcParams["backend"] = os.environ.get("MPLBACKEND", INLINE_BACKEND)
        from convae.grading import sandbox

        if sandbox.sandboxed():
            sandbox.set_limits()
        connection_file = Path(f"/tmp/kernel-{os.getpid()}.json")
        connection_file.write_text(json.dumps(request["connection"]))
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        # As ipykernel_launcher: the working folder comes back on sys.path through IPython.
        sys.path[:] = [p for p in sys.path if p not in ("", request["cwd"])]
        sys.argv = ["ipykernel_launcher", "-f", str(connection_file)]
        from ipykernel import kernelapp

        kernelapp.launch_new_instance(argv=sys.argv[1:])
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:  # noqa: BLE001 -- report, then leave without running the server's code
        import traceback

        traceback.print_exc()
        code = 1
    os._exit(code)


def read_request(conn: socket.socket) -> dict | None:
    conn.settimeout(10)
    data = b""
    try:
        while not data.endswith(b"\n"):
            chunk = conn.recv(1 << 16)
            if not chunk:
                return None
            data += chunk
    except OSError:  # a timeout too
        return None
    conn.settimeout(None)
    return json.loads(data)


def serve(listener: socket.socket, own_namespace: bool) -> socket.socket | None:
    """Fork kernels on request until told to stop (returns that connection) or idle (None)."""
    kernels: dict[socket.socket, int] = {}  # launcher connection -> kernel pid
    idle_since = time.monotonic()
    while True:
        ready, _, _ = select.select([listener, *kernels], [], [], 0.1)
        for sock in ready:
            if sock is listener:
                conn, _ = listener.accept()
                request = read_request(conn)
                if request is None:
                    conn.close()
                elif request.get("shutdown"):
                    for pid in kernels.values():
                        kill_group(pid)
                    return conn  # closed once the server is gone: the caller waits for that
                else:
                    if own_namespace and not kernels:
                        kill_leftovers()
                    pid = os.fork()
                    if pid == 0:
                        listener.close()
                        for other in kernels:
                            other.close()
                        conn.close()
                        run_kernel(request)
                    kernels[conn] = pid
            elif not sock.recv(1):  # the launcher is gone: so is its kernel
                kill_group(kernels.pop(sock))
                sock.close()
        report_exits(kernels)
        if kernels:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_SECONDS:
            return None


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def report_exits(kernels: dict[socket.socket, int]) -> None:
    """Reap finished kernels and tell each one's launcher its exit code."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        for conn, kernel_pid in list(kernels.items()):
            if kernel_pid == pid:
                del kernels[conn]
                kill_group(pid)  # whatever the kernel started goes with it
                try:
                    conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
                except OSError:
                    pass
                conn.close()


def main(argv: list[str]) -> None:
    path = Path(argv[1])
    own_namespace = "--own-pid-namespace" in argv[2:]
    if "--die-with-parent" in argv[2:]:  # unsandboxed; in the sandbox bubblewrap does this
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    set_dumpable(False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))  # bind before the imports: launchers connect and wait in the backlog
    listener.listen(16)
    preload()
    stopped_by = None
    try:
        stopped_by = serve(listener, own_namespace)
    finally:
        path.unlink(missing_ok=True)
        if own_namespace:  # the sandbox lasts as long as any process in it
            kill_leftovers()
        if stopped_by is not None:
            stopped_by.close()


if __name__ == "__main__":
    main(sys.argv)
