"""One grading job in one process: ``python -m convae.grading.worker ROOT ASSIGNMENT STUDENT CONFIG``.

Starts the job's kernel server (sandboxed when asked; it ends with this process), then runs
nbgrader's autograde and generate_feedback through its Python API, while the server imports torch.
CONFIG is a JSON object of traitlets overrides merged over the course's ``nbgrader_config.py``.
Exit status: 0 graded, 2 autograde failed, 3 feedback failed; nbgrader's log goes to stderr on
failure.

``run`` starts a job's worker as a fork of the standard library's multiprocessing forkserver,
which imports nbgrader, nbconvert and the grading preprocessors once per grading process
(importing this module does): every job's worker then starts with them loaded, instead of paying
seconds of imports each. Each worker is still a fresh process of its own, with the job's
environment and working folder; the forkserver is instructor code only, like the worker.
"""

from convae.grading import commands

commands.skip_iri_grammar()  # before nbgrader and nbformat are imported, below

import importlib  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from convae import notebooks  # noqa: E402
from convae.grading import kernel_server, sandbox  # noqa: E402

# What every worker imports: loaded in the forkserver once, before it forks any worker.
PRELOAD = (
    "nbgrader.apps",
    "nbgrader.coursedir",
    "nbgrader.preprocessors",
    "nbgrader.converters",
    "nbconvert.exporters",
    "nbclient",
    "jupyter_client.manager",
    "convae.grading.execute",
    "convae.grading.feedback",
    "convae.install_cell",
    "convae.review.lms",  # the late-penalty plugin named by nbgrader_config.py
)
for _name in PRELOAD:
    importlib.import_module(_name)


def main(argv: list[str]) -> int:
    root, assignment, student, overrides = Path(argv[1]), argv[2], argv[3], json.loads(argv[4])
    sandbox.die_with_parent()  # a grading run (or a cluster worker) that is killed takes its jobs along
    workdir = root / "autograded" / student / assignment
    server = start_kernel_server(workdir, trains(root / "release" / assignment))
    try:
        return grade(root, assignment, student, overrides)
    finally:
        if server is not None:
            sandbox.stop_server(Path(os.environ[sandbox.RUNTIME_DIR]))
            server.kill()  # gone already unless it hung; the sandbox ends with it


def start_kernel_server(workdir: Path, training: bool):
    """The job's kernel server, started now so that its imports overlap nbgrader's."""
    runtime = os.environ.get(sandbox.RUNTIME_DIR)
    if not runtime:
        return None
    os.environ[kernel_server.PRELOAD_TRAINING] = "1" if training else "0"
    with sandbox.server_lock(Path(runtime)):
        return sandbox.start_server(workdir, Path(runtime), die_with_parent=True)


TRAINING = re.compile(r"\boptim|\btrain\w*\(")  # torch.optim, or a call of a training helper


def trains(release: Path) -> bool:
    """Whether the code of the assignment's released notebooks trains a model (an optimiser step)."""
    return any(
        TRAINING.search(cell.source)
        for path in release.glob("*.ipynb")
        for cell in notebooks.read(path).cells
        if cell.cell_type == "code"
    )


def grade(root: Path, assignment: str, student: str, overrides: dict) -> int:
    api = commands.nbgrader_api(root, overrides)
    for step, code in (("autograde", 2), ("generate_feedback", 3)):
        kwargs = {"create": True} if step == "autograde" else {}
        result = getattr(api, step)(assignment, student, force=True, **kwargs)
        if not result["success"]:
            print(result.get("log", ""), result.get("error", ""), sep="\n", file=sys.stderr)
            return code
    return 0


def context():
    """The multiprocessing context whose forkserver has this module, and so nbgrader, imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def run(argv: list[str], env: dict, cwd: Path, logs: Path, timeout: float) -> subprocess.CompletedProcess:
    """``main(argv)`` in a fresh worker forked from the forkserver, as ``subprocess.run`` would run
    ``python -m convae.grading.worker``: the job's environment and folder, its output captured
    (in ``logs``), ``subprocess.TimeoutExpired`` after ``timeout`` seconds (the worker killed)."""
    out, err = logs / "worker.stdout", logs / "worker.stderr"
    process = context().Process(target=forked, args=(argv, env, str(cwd), str(out), str(err)))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()  # its kernel server dies with it (die_with_parent)
        process.join()
        raise subprocess.TimeoutExpired(argv, timeout)
    read = lambda path: path.read_text(errors="replace") if path.exists() else ""  # noqa: E731
    return subprocess.CompletedProcess(argv, process.exitcode, read(out), read(err))


def forked(argv: list[str], env: dict, cwd: str, out: str, err: str) -> None:
    """In the forked worker: become the job's process, then run it."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    for fd, path in ((1, out), (2, err)):
        file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(file, fd)
        os.close(file)
    sys.exit(main(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
