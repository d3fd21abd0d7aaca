"""The grading kernel: ``python -m convae.grading.sandbox <connection_file>`` (a kernelspec's argv).

nbgrader starts this in place of the plain ipykernel (see ``convae.grading.pipeline``). It connects
to the grading job's kernel server (``convae.grading.kernel_server``), starting it on first use, and asks
it to fork a kernel; it then waits, exits with the kernel's exit code, and takes the kernel down
with it when the kernel manager kills it.

When ``CONVAE_SANDBOX_HIDE`` is set, the server (and so every kernel it forks) runs inside
bubblewrap (``bwrap``), so that student code:
- has no network (a fresh, empty network namespace);
- sees the file system read-only, with the course folder hidden (no ``gradebook.db``, no
  ``source/``, no other student's work) except the kernel's working folder (its own autograded
  submission, writable), its own repaired submission (read-only, for sibling notebooks), the
  Python environment and the ``convae`` package (read-only);
- gets a private ``/tmp`` and ``/dev/shm`` of ``CONVAE_SANDBOX_TMP_SIZE`` bytes each, and its own
  PID namespace (it sees no process outside);
- works in a scratch copy of its submission: a tmpfs at the working folder, room for the
  submission plus ``CONVAE_SANDBOX_SCRATCH_SIZE`` bytes, filled by the kernel server; nothing else
  it can write is a file system without a size (the folder that hides the course and ``/dev``
  are read-only);
- has no capabilities, even when grading runs as root (root in a sandbox that kept them could
  unmount the folder that hides the course);
- cannot use more than ``CONVAE_SANDBOX_MEMORY`` bytes of address space, ``CONVAE_SANDBOX_CPU``
  seconds of CPU time or write files larger than ``CONVAE_SANDBOX_FILE_SIZE`` bytes, nor start
  more than ``CONVAE_SANDBOX_NPROC`` processes where no pids cgroup holds the job (limits set in
  each kernel after the fork).
Limits on the job as a whole (memory, processes, CPU share) are cgroups (``convae.grading.limits``):
the server's command starts by entering the job's groups. The kernel talks to nbgrader over Unix
sockets (IPC transport) in the job's runtime folder, which is bound into the sandbox; TCP on
loopback is not reachable from a separate network namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import convae
from convae.grading import limits

DEFAULT_MEMORY = 6 * 2**30
DEFAULT_CPU_SECONDS = 900
DEFAULT_FILE_SIZE = 256 * 2**20
SERVER_SOCKET = "kernel-server.sock"
RUNTIME_DIR = "CONVAE_GRADING_RUNTIME"  # the job's folder for IPC sockets and its kernel server
FLAGS_FILE = "CONVAE_GRADING_FLAGS"  # where the job's flags go (outside the sandbox)
SERVER_START_SECONDS = 120
PR_SET_PDEATHSIG = 1
TMP_SIZE = "CONVAE_SANDBOX_TMP_SIZE"  # bytes of the private /tmp and /dev/shm each; unset: no limit
SCRATCH_SIZE = "CONVAE_SANDBOX_SCRATCH_SIZE"  # bytes for new files in the working copy; unset: none
NPROC = "CONVAE_SANDBOX_NPROC"  # RLIMIT_NPROC of each kernel, where no pids cgroup holds the job


def bwrap_arguments(
    hide: Path,
    writable: list[Path],
    readable: list[Path],
    scratch: dict[Path, int | None] | None = None,
    die_with_parent: bool = False,
    tmp_size: int | None = None,
) -> list[str]:
    """The bwrap command line up to (not including) the program to run.

    ``writable`` and ``readable`` folders appear at their own paths; each ``scratch`` folder is an
    empty tmpfs of that many bytes (None: no limit) at its path. The private ``/tmp`` and
    ``/dev/shm`` are tmpfs of ``tmp_size`` bytes each. With ``die_with_parent`` the sandbox, and
    everything in it, ends with the process that started it (the grading worker); a server a
    kernel launcher starts must outlive that launcher.
    """
    scratch = scratch or {}
    for path in [*writable, *scratch]:
        if path == hide or path in hide.parents:
            raise ValueError(f"refusing to expose {path}: it contains the hidden folder {hide}")
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    args += [*tmpfs("/tmp", tmp_size), *tmpfs("/dev/shm", tmp_size), "--tmpfs", str(hide)]
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    for path, size in scratch.items():
        args += tmpfs(str(path), size)
    # What is left writable has no size: the tmpfs that hides the course and the one of /dev.
    args += ["--remount-ro", str(hide), "--remount-ro", "/dev"]
    args += ["--die-with-parent"] if die_with_parent else []
    return args + ["--unshare-net", "--unshare-ipc", "--unshare-pid", "--cap-drop", "ALL", "--"]


def tmpfs(path: str, size: int | None) -> list[str]:
    return (["--size", str(size)] if size else []) + ["--tmpfs", path]


def readable_paths() -> list[Path]:
    """The environment and the package, which may live inside the hidden course folder."""
    return [Path(sys.prefix).resolve(), Path(convae.__file__).resolve().parent]


def probe() -> str | None:
    """None when the sandbox works here, else the reason it does not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    args = bwrap_arguments(Path("/tmp/convae-probe-hidden"), [], readable_paths(), tmp_size=2**20)
    try:
        proc = subprocess.run([*args, "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap failed to start: {error}"
    if proc.returncode != 0:
        return f"bwrap cannot create a sandbox here: {proc.stderr.strip() or proc.returncode}"
    return None  # a bwrap without --size (for the tmpfs sizes) fails above


def sandboxed() -> bool:
    return bool(os.environ.get("CONVAE_SANDBOX_HIDE"))


def set_limits() -> None:
    def limit(kind, env, default):
        value = int(os.environ.get(env, default))
        resource.setrlimit(kind, (value, value))

    limit(resource.RLIMIT_AS, "CONVAE_SANDBOX_MEMORY", DEFAULT_MEMORY)
    limit(resource.RLIMIT_CPU, "CONVAE_SANDBOX_CPU", DEFAULT_CPU_SECONDS)
    limit(resource.RLIMIT_FSIZE, "CONVAE_SANDBOX_FILE_SIZE", DEFAULT_FILE_SIZE)
    if os.environ.get(NPROC):  # root (uid 0 of the machine) is exempt: it binds for other graders
        limit(resource.RLIMIT_NPROC, NPROC, 0)


def size_setting(name: str) -> int | None:
    value = int(os.environ.get(name) or 0)
    return value or None


def server_command(workdir: Path, runtime: Path, die_with_parent: bool = False) -> list[str]:
    """The kernel server of one grading job, inside the sandbox when one is asked for, and inside
    the job's cgroups when it has them."""
    server = [sys.executable, "-m", "convae.grading.kernel_server", str(runtime / SERVER_SOCKET)]
    enter = [sys.executable, "-m", "convae.grading.limits"] if os.environ.get(limits.GROUPS) else []
    if not sandboxed():
        return enter + server + (["--die-with-parent"] if die_with_parent else [])
    hide = Path(os.environ["CONVAE_SANDBOX_HIDE"]).resolve()
    # Kernels may write the working copy, /tmp and /dev/shm (tmpfs with sizes) and the folder of
    # their IPC sockets, nothing else.
    readable = readable_paths()
    submission = os.environ.get(convae.SUBMISSION_DIR)
    if submission:  # the student's own submission, for sibling notebooks
        readable.append(Path(submission).resolve())
    # The working folder is a scratch copy of the submission, a tmpfs shown at the autograded
    # folder's path: nbgrader writes each graded notebook (hidden tests restored) into the real
    # one, where the kernel of the next notebook must not read it. The server fills it.
    scratch = {workdir: scratch_size(Path(submission) if submission else None)}
    sandbox = bwrap_arguments(
        hide, [runtime], readable, scratch, die_with_parent, tmp_size=size_setting(TMP_SIZE)
    )
    return [*enter, *sandbox, *server, "--own-pid-namespace", "--scratch", str(workdir)]


def scratch_size(submission: Path | None) -> int | None:
    """Room for the submission's files plus ``CONVAE_SANDBOX_SCRATCH_SIZE`` bytes of new ones."""
    extra = size_setting(SCRATCH_SIZE)
    if extra is None:
        return None
    files = submission.rglob("*") if submission and submission.is_dir() else []
    # tmpfs counts whole pages; a margin of a page per file and folder
    return extra + sum(path.stat().st_size + 4096 for path in files) + 4096


def try_connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    return sock


def start_server(workdir: Path, runtime: Path, die_with_parent: bool = False) -> subprocess.Popen:
    """Start the job's kernel server and wait until its socket accepts connections.

    The grading worker starts it before nbgrader runs, so that its imports overlap nbgrader's
    (``die_with_parent``: it ends with the worker); a kernel launcher starts one when none runs.
    """
    path = runtime / SERVER_SOCKET
    log = open(runtime / "kernel-server.log", "ab")  # noqa: SIM115 -- the server's whole life
    env = dict(os.environ)
    env.setdefault("MPLCONFIGDIR", str(runtime / "matplotlib"))  # home is read-only in the sandbox
    server = subprocess.Popen(
        server_command(workdir, runtime, die_with_parent),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,  # the kernel manager kills the launcher's group, not the server
    )
    deadline = time.monotonic() + SERVER_START_SECONDS
    while (sock := try_connect(path)) is None:
        if server.poll() is not None:
            raise RuntimeError(f"the kernel server exited ({server.returncode}): see {log.name}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the kernel server did not start: see {log.name}")
        time.sleep(0.02)
    sock.close()
    return server


def server_lock(runtime: Path):
    """Held while a server is found or started: one server per job."""
    lock = open(runtime / "kernel-server.lock", "w")  # noqa: SIM115 -- closed by the caller's with
    fcntl.flock(lock, fcntl.LOCK_EX)
    return lock


def connect_to_server(workdir: Path, runtime: Path) -> socket.socket:
    """A connection to the job's kernel server, started here if none runs yet."""
    path = runtime / SERVER_SOCKET
    with server_lock(runtime):
        sock = try_connect(path)
        if sock is not None:
            return sock
        server = start_server(workdir, runtime)
        server.returncode = 0  # it runs on alone; do not warn that it is still running
        sock = try_connect(path)
        if sock is None:
            raise RuntimeError("the kernel server stopped as soon as it started")
        return sock


def stop_server(runtime: Path) -> None:
    """Stop the job's kernel server, if one runs (grading does this when the job is done)."""
    sock = try_connect(runtime / SERVER_SOCKET)
    if sock is not None:
        with sock, contextlib.suppress(OSError):  # a server that dies now is stopped too
            sock.sendall(b'{"shutdown": true}\n')
            sock.settimeout(10)
            try:
                sock.recv(1)  # returns when the server has exited
            except OSError:  # a timeout, or a server that died as it was asked to stop
                pass


def die_with_parent() -> None:
    """Let the kernel manager's death kill this launcher, and so (through the server) its kernel."""
    libc = ctypes.CDLL(None)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def main(argv: list[str]) -> None:
    die_with_parent()
    connection = json.loads(Path(argv[1]).read_text())
    workdir = Path.cwd().resolve()
    runtime = Path(os.environ[RUNTIME_DIR]).resolve()
    sock = connect_to_server(workdir, runtime)
    request = {"connection": connection, "cwd": str(workdir), "env": dict(os.environ)}
    sock.sendall(json.dumps(request).encode() + b"\n")
    answer = b""
    while chunk := sock.recv(64):
        answer += chunk
    exited = json.loads(answer) if answer.strip() else {"code": 1}
    for space in exited.get("full", []):
        record_flag(f"{space} was full: the kernel's writes there were refused")
    code = int(exited["code"])
    sys.exit(code if code >= 0 else 128 - code)


def record_flag(text: str) -> None:
    """A flag for the job's report (``CONVAE_GRADING_FLAGS``, outside the sandbox), once per job."""
    path = os.environ.get(FLAGS_FILE)
    if not path:
        return
    line = json.dumps(text)
    with open(path, "a+") as f:
        f.seek(0)
        if line not in f.read().splitlines():
            f.write(line + "\n")


if __name__ == "__main__":
    main(sys.argv)
