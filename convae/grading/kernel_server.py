"""A fork server for grading kernels: ``python -m convae.grading.kernel_server SOCKET [--own-pid-namespace]``.

Every grading kernel used to import torch, its compiler front end (imported by the first
optimizer step; preloaded only for a job whose notebooks train), matplotlib and ipykernel itself:
3-4 s of the same work in each of a submission's notebooks. This server imports them once and
forks a kernel per request, so a kernel starts in a fraction of a second with the libraries
already loaded. ``convae.grading.sandbox`` starts one server per grading job (one student's
assignment), inside that job's sandbox, and connects to it.

Protocol, on a Unix socket: the launcher sends one JSON line ``{"connection": <the kernel's
connection info>, "cwd": ..., "env": {...}}`` and waits; when the kernel exits the server
answers with a JSON line, ``{"code": <its exit code>, "full": [<size-limited file systems seen
full while it ran>]}``, and closes. If the launcher goes away (killed by the kernel manager), the
server kills that kernel's process group. ``{"shutdown": true}`` stops the server.

Isolation between kernels: each kernel is a fresh fork of the untouched server, so nothing one
notebook does in memory reaches the next. The server is not dumpable (``PR_SET_DUMPABLE`` 0):
a kernel cannot read or write its memory through ``/proc`` or ptrace. In its own PID namespace
(the sandbox) the server also kills every leftover process before it forks a new kernel and
when it stops. Each kernel raises its own OOM score, so that when the job reaches its memory
limit the kernel's processes are ended before the server.

In the sandbox (``--scratch WORKDIR``) the server first fills the kernels' working folder, an
empty tmpfs, with a copy of the student's submission (``CONVAE_SUBMISSION_DIR``, read-only), and
while kernels run it samples the free space of the sandbox's size-limited file systems: a student
who fills one is told apart from one whose code failed on its own (best-effort: a file system
filled and emptied between two samples, 0.1 s apart, goes unseen).
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import shutil
import signal
import socket
import stat
import sys
import time
from pathlib import Path

from convae.grading import commands

# The libraries every course notebook imports. Not matplotlib.pyplot: importing it picks the
# inline backend, which must happen inside the kernel to hook into IPython's display.
PRELOAD = (
    "numpy",
    "torch",
    "torch.optim",
    "matplotlib",
    "matplotlib.figure",
    "matplotlib.backend_bases",
    "tqdm.auto",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "torch.distributions",
    "convae.data",
    "convae.training",
    "convae.summary",
    "convae.pretrained",
    "convae.plotting",
    "convae.notebooks",
    "nbformat",  # convae.notebooks.run_cells: the notebooks that run a sibling notebook's cells
    "convae.grading.agent",  # what every test cell runs in the kernel while the judge grades it
    "convae.grading.checks",
    "safetensors.torch",
)
# Imported lazily by the first torch.optim step (1.1-1.4 s): preloaded only for a job whose
# notebooks train (the worker says so in PRELOAD_TRAINING); any other kernel that needs it
# imports it itself.
TRAINING_PRELOAD = ("torch._dynamo",)
PRELOAD_TRAINING = "CONVAE_PRELOAD_TRAINING"
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
IDLE_SECONDS = 120  # a server whose grading job died without stopping it exits on its own
PR_SET_DUMPABLE = 4
OOM_SCORE_ADJ = 1000  # a kernel and what it starts go first; it cannot go below 0 again unprivileged
FULL_BELOW = 2**20  # bytes free under which a size-limited file system counts as full
SERVER_FILES = ("kernel-server.log", "kernel-server.lock")  # the server's own, in the runtime folder


def preload() -> None:
    # ipykernel selects the inline backend through MPLBACKEND; matplotlib reads it on import.
    os.environ.setdefault("MPLBACKEND", INLINE_BACKEND)
    commands.skip_iri_grammar()  # for nbformat, which the preload imports
    for name in PRELOAD + (TRAINING_PRELOAD if os.environ.get(PRELOAD_TRAINING) == "1" else ()):
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


def fill_scratch(workdir: Path) -> None:
    """The kernels' working folder (an empty tmpfs): a copy of the student's submission."""
    submission = os.environ.get("CONVAE_SUBMISSION_DIR")
    if submission and Path(submission).is_dir():
        shutil.copytree(submission, workdir, dirs_exist_ok=True)


class SpaceWatch:
    """The sandbox's size-limited file systems, sampled while kernels run."""

    def __init__(self, paths: list[str]):
        self.paths = paths

    def full(self) -> set[str]:
        found = set()
        for path in self.paths:
            try:
                space = os.statvfs(path)
            except OSError:
                continue
            if space.f_bavail * space.f_frsize < FULL_BELOW:
                found.add(f"{path} ({space.f_blocks * space.f_frsize / 2**20:.0f} MiB)")
        return found


def empty_writable_space(runtime: Path) -> None:
    """Empty what the last kernel could write for the next one: the sandbox's /tmp and /dev/shm,
    and the runtime folder but its sockets and the server's log and lock (the grader keeps its
    kernels' connection files elsewhere). A kernel that filled /tmp would leave no room for the
    next one's connection file; what it wrote in the runtime folder, a tmpfs outside charged to
    the job's memory, would hold the job at its memory limit. Mounts inside /tmp (the runtime
    folder, the working copy) are left alone."""
    for top in ("/tmp", "/dev/shm"):
        device = os.stat(top).st_dev
        for folder, dirs, files in os.walk(top, topdown=False):
            for name in files + dirs:
                remove(os.path.join(folder, name), device, is_dir=name in dirs)
    device = os.stat(runtime).st_dev
    for entry in os.scandir(runtime):
        if entry.name in SERVER_FILES or stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
            continue
        if entry.is_dir(follow_symlinks=False):
            for folder, dirs, files in os.walk(entry.path, topdown=False):
                for name in files + dirs:
                    remove(os.path.join(folder, name), device, is_dir=name in dirs)
        remove(entry.path, device, is_dir=entry.is_dir(follow_symlinks=False))


def remove(path: str, device: int, is_dir: bool) -> None:
    """Remove a file, or an empty folder, of the file system ``device``; anything else stays."""
    try:
        if os.lstat(path).st_dev != device:
            return
        if is_dir and not os.path.islink(path):
            os.rmdir(path)  # fails while it holds a mount point, or a socket: left
        else:
            os.unlink(path)
    except OSError:
        pass


def run_kernel(request: dict) -> None:
    """In the forked child: become the kernel described by ``request``; never returns."""
    try:
        os.setsid()  # its own process group, killed as a whole
        set_dumpable(True)  # an ordinary process again; the server stays closed
        Path("/proc/self/oom_score_adj").write_text(str(OOM_SCORE_ADJ))
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


def serve(listener: socket.socket, own_namespace: bool, watch: SpaceWatch) -> socket.socket | None:
    """Fork kernels on request until told to stop (returns that connection) or idle (None)."""
    runtime = Path(listener.getsockname()).parent
    kernels: dict[socket.socket, Kernel] = {}  # launcher connection -> kernel
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
                    for kernel in kernels.values():
                        kill_group(kernel.pid)
                    return conn  # closed once the server is gone: the caller waits for that
                else:
                    if own_namespace and not kernels:
                        kill_leftovers()
                        empty_writable_space(runtime)
                    pid = os.fork()
                    if pid == 0:
                        listener.close()
                        for other in kernels:
                            other.close()
                        conn.close()
                        run_kernel(request)
                    kernels[conn] = Kernel(pid)
            elif not sock.recv(1):  # the launcher is gone: so is its kernel
                kill_group(kernels.pop(sock).pid)
                sock.close()
        if kernels:
            full = watch.full()
            for kernel in kernels.values():
                kernel.full |= full
        report_exits(kernels)
        if kernels:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > IDLE_SECONDS:
            return None


class Kernel:
    def __init__(self, pid: int):
        self.pid = pid
        self.full: set[str] = set()  # size-limited file systems seen full while it ran


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def report_exits(kernels: dict[socket.socket, Kernel]) -> None:
    """Reap finished kernels and tell each one's launcher its exit code."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        for conn, kernel in list(kernels.items()):
            if kernel.pid == pid:
                del kernels[conn]
                kill_group(pid)  # whatever the kernel started goes with it
                answer = {"code": os.waitstatus_to_exitcode(status), "full": sorted(kernel.full)}
                try:
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                except OSError:
                    pass
                conn.close()


def main(argv: list[str]) -> None:
    path = Path(argv[1])
    own_namespace = "--own-pid-namespace" in argv[2:]
    scratch = argv[argv.index("--scratch") + 1] if "--scratch" in argv else None
    if "--die-with-parent" in argv[2:]:  # unsandboxed; in the sandbox bubblewrap does this
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    set_dumpable(False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))  # bind before the imports: launchers connect and wait in the backlog
    listener.listen(16)
    if scratch:
        fill_scratch(Path(scratch))
    watch = SpaceWatch(["/tmp", "/dev/shm", scratch] if own_namespace and scratch else [])
    preload()
    stopped_by = None
    try:
        stopped_by = serve(listener, own_namespace, watch)
    finally:
        path.unlink(missing_ok=True)
        if own_namespace:  # the sandbox lasts as long as any process in it
            kill_leftovers()
        if stopped_by is not None:
            stopped_by.close()


if __name__ == "__main__":
    main(sys.argv)
