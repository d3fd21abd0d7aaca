"""One grading job in one process: ``python -m convae.grading.worker ROOT ASSIGNMENT STUDENT CONFIG``.

Starts the job's kernel server (sandboxed when asked; it ends with this process), then runs
nbgrader's autograde and generate_feedback through its Python API, so the ~4 s of nbgrader's
imports are paid once per submission instead of once per step, while the server imports torch.
CONFIG is a JSON object of traitlets overrides merged over the course's ``nbgrader_config.py``.
Exit status: 0 graded, 2 autograde failed, 3 feedback failed; nbgrader's log goes to stderr on
failure.
"""

import sys

# jsonschema imports rfc3987_syntax, when installed, to check IRI formats that notebooks never
# use; building its grammar costs ~3.5 s of every nbgrader start. Make that optional import fail.
sys.modules.setdefault("rfc3987_syntax", None)

import json  # noqa: E402
import os  # noqa: E402
from pathlib import Path  # noqa: E402

from convae.grading import commands, sandbox  # noqa: E402


def main(argv: list[str]) -> int:
    root, assignment, student, overrides = Path(argv[1]), argv[2], argv[3], json.loads(argv[4])
    sandbox.die_with_parent()  # a grading run (or a cluster worker) that is killed takes its jobs along
    server = start_kernel_server(root / "autograded" / student / assignment)
    try:
        return grade(root, assignment, student, overrides)
    finally:
        if server is not None:
            sandbox.stop_server(Path(os.environ[sandbox.RUNTIME_DIR]))
            server.kill()  # gone already unless it hung; the sandbox ends with it


def start_kernel_server(workdir: Path):
    """The job's kernel server, started now so that its imports overlap nbgrader's."""
    runtime = os.environ.get(sandbox.RUNTIME_DIR)
    if not runtime:
        return None
    with sandbox.server_lock(Path(runtime)):
        return sandbox.start_server(workdir, Path(runtime), die_with_parent=True)


def grade(root: Path, assignment: str, student: str, overrides: dict) -> int:
    api = commands.nbgrader_api(root, overrides)
    for step, code in (("autograde", 2), ("generate_feedback", 3)):
        kwargs = {"create": True} if step == "autograde" else {}
        result = getattr(api, step)(assignment, student, force=True, **kwargs)
        if not result["success"]:
            print(result.get("log", ""), result.get("error", ""), sep="\n", file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
