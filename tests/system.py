"""The system packages (and cgroups) the suite needs, and the one way to run it without them.

``bash course.sh test`` installs these Debian packages when it runs as root (as CI does) and
otherwise stops and prints the command to run. A test that needs one is marked
``@pytest.mark.system("bubblewrap")``: where the package is not usable, the test fails with the
reason, unless ``CONVAE_SKIP_SYSTEM_TESTS=1`` says out loud to skip such tests; the run then ends
with a line naming what was skipped (``conftest.pytest_terminal_summary``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

SKIP_VARIABLE = "CONVAE_SKIP_SYSTEM_TESTS"
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


def _bubblewrap() -> str | None:
    from convae.grading import sandbox

    return sandbox.probe()


def _chromium() -> str | None:
    return None if shutil.which("chromium") else "chromium is not installed"


def _postgresql() -> str | None:
    from conftest import load_tool

    return load_tool("postgres_server").UNAVAILABLE


def _cgroups() -> str | None:
    # Not a package: cgroups the grader may create (root, or systemd delegation), for per-job limits.
    from convae.grading import limits

    usable, problem = limits.probe(limits.Limits())
    held = set().union(*(hierarchy.controllers for hierarchy in usable))
    missing = {"pids", "memory", "cpu"} - held
    return None if not missing else f"no {', '.join(sorted(missing))} cgroup can be created here ({problem})"


def _fashion_mnist() -> str | None:
    return None if FASHION_MNIST.is_dir() else f"{FASHION_MNIST} does not exist"


# Debian package -> (what the tests use it for, why it is unusable here or None).
PACKAGES = {
    "bubblewrap": ("the grading sandbox: the security suite", _bubblewrap),
    "chromium": ("pages in a real browser", _chromium),
    "postgresql": ("a shared gradebook and the cluster", _postgresql),
    "dataset-fashion-mnist": ("the real data set", _fashion_mnist),
    "cgroups": ("per-job limits on memory, processes and CPU", _cgroups),
}
NOT_PACKAGES = {"cgroups": "run the tests as root (or as a user with systemd cgroup delegation)"}


def skipping_allowed() -> bool:
    return os.environ.get(SKIP_VARIABLE) == "1"


def problem(package: str) -> str | None:
    """Why ``package`` cannot be used here, or None when it can."""
    return PACKAGES[package][1]()


def install_hint(packages) -> str:
    debian = sorted(p for p in packages if p not in NOT_PACKAGES)
    hints = [f"sudo apt-get install -y {' '.join(debian)}"] if debian else []
    return "; ".join(hints + [NOT_PACKAGES[p] for p in sorted(packages) if p in NOT_PACKAGES])
