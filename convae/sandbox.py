"""A sandboxed Jupyter kernel for grading: ``python -m convae.sandbox <connection_file>``.

nbgrader starts this instead of the plain ipykernel (see ``convae.grading``). It sets resource
limits, then execs the kernel inside bubblewrap (``bwrap``) so that student code:
- has no network (a fresh, empty network namespace);
- sees the file system read-only, with the course folder hidden (no ``gradebook.db``, no
  ``source/``, no other student's work) except the kernel's working folder (its own autograded
  submission, writable), its own repaired submission (read-only, for sibling notebooks), the
  Python environment and the ``convae`` package (read-only);
- gets a private ``/tmp``;
- cannot use more than ``CONVAE_SANDBOX_MEMORY`` bytes of address space, ``CONVAE_SANDBOX_CPU``
  seconds of CPU time or write files larger than ``CONVAE_SANDBOX_FILE_SIZE`` bytes.
The kernel talks to nbgrader over Unix sockets (IPC transport) in the runtime folder, which is
bound into the sandbox; TCP on loopback is not reachable from a separate network namespace.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import convae

DEFAULT_MEMORY = 6 * 2**30
DEFAULT_CPU_SECONDS = 900
DEFAULT_FILE_SIZE = 256 * 2**20


def bwrap_arguments(hide: Path, writable: list[Path], readable: list[Path]) -> list[str]:
    """The bwrap command line up to (not including) the program to run."""
    for path in writable:
        if path == hide or path in hide.parents:
            raise ValueError(f"refusing to expose {path}: it contains the hidden folder {hide}")
    args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    args += ["--tmpfs", str(hide)]
    for path in readable:
        args += ["--ro-bind", str(path), str(path)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    return args + ["--unshare-net", "--unshare-ipc", "--die-with-parent", "--"]


def readable_paths() -> list[Path]:
    """The environment and the package, which may live inside the hidden course folder."""
    return [Path(sys.prefix).resolve(), Path(convae.__file__).resolve().parent]


def probe() -> str | None:
    """None when the sandbox works here, else the reason it does not."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    args = bwrap_arguments(Path("/tmp/convae-probe-hidden"), [], readable_paths())
    try:
        proc = subprocess.run([*args, "true"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bwrap failed to start: {error}"
    if proc.returncode != 0:
        return f"bwrap cannot create a sandbox here: {proc.stderr.strip() or proc.returncode}"
    return None


def set_limits() -> None:
    def limit(kind, env, default):
        value = int(os.environ.get(env, default))
        resource.setrlimit(kind, (value, value))

    limit(resource.RLIMIT_AS, "CONVAE_SANDBOX_MEMORY", DEFAULT_MEMORY)
    limit(resource.RLIMIT_CPU, "CONVAE_SANDBOX_CPU", DEFAULT_CPU_SECONDS)
    limit(resource.RLIMIT_FSIZE, "CONVAE_SANDBOX_FILE_SIZE", DEFAULT_FILE_SIZE)


def main(argv: list[str]) -> None:
    connection_file = Path(argv[1]).resolve()
    hide = Path(os.environ["CONVAE_SANDBOX_HIDE"]).resolve()
    # The kernel may write its own working folder and the folder of its IPC sockets, nothing else;
    # the connection file (which may sit in a shared /tmp) is bound alone, read-only.
    sockets = Path(os.environ["CONVAE_SANDBOX_SOCKETS"]).resolve()
    writable = [Path.cwd().resolve(), sockets]
    set_limits()
    readable = [*readable_paths(), connection_file]
    if os.environ.get(convae.SUBMISSION_DIR):  # the student's own submission, for sibling notebooks
        readable.append(Path(os.environ[convae.SUBMISSION_DIR]).resolve())
    args = bwrap_arguments(hide, writable, readable)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", str(connection_file)]
    os.execvp("bwrap", [*args, *kernel])


if __name__ == "__main__":
    main(sys.argv)
