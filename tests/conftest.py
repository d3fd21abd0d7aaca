import atexit
import fcntl
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

# What a course copy needs to regenerate the release and grade the example class.
COURSE_FILES = ("source", "nbgrader_config.py", "examples")


def load_tool(name: str):
    """A script from tools/ as a module (tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_course(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in COURSE_FILES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(
                src, target / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
            )
        else:
            shutil.copy2(src, target / name)
    return target


_RELEASES: dict[str, Path] = {}


def release_course(root: Path) -> None:
    """``course.generate_release(root)`` (the release and the gradebook's assignments), once per
    distinct course in this test process: a course whose sources and configuration equal one
    released before gets a copy of that release and gradebook instead of nbgrader's 5-10 s."""
    from convae import course

    digest = hashlib.sha256()
    for path in sorted([*(root / "source").rglob("*"), root / "nbgrader_config.py"]):
        if path.is_file():
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    cached = _RELEASES.get(digest.hexdigest())
    if cached is None:
        course.generate_release(root)
        cached = Path(tempfile.mkdtemp(prefix="convae-release-cache-"))
        atexit.register(shutil.rmtree, cached, ignore_errors=True)
        shutil.copytree(root / "release", cached / "release")
        shutil.copy2(root / "gradebook.db", cached / "gradebook.db")
        _RELEASES[digest.hexdigest()] = cached
        return
    shutil.copytree(cached / "release", root / "release")
    shutil.copy2(cached / "gradebook.db", root / "gradebook.db")


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """A copy of the course with the release regenerated and the example class graded: once per
    test run, shared by every test that only reads it (and, under pytest-xdist, by every worker:
    the first one to need it grades it, the others wait for it). A test that changes it works in
    a copy of its own."""
    from convae import course

    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' folders have one parent per run
        shared = shared.parent
    root = shared / "graded-course"
    with open(shared / "graded-course.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "graded-course.done").exists():
            shutil.rmtree(root, ignore_errors=True)
            course.grade_example_class(copy_course(root))
            (shared / "graded-course.done").touch()
    return root


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server on loopback for the session (skips where there is none)."""
    require_system("postgresql")
    postgres_server = load_tool("postgres_server")
    server = postgres_server.PostgresServer()
    try:
        yield server
    finally:
        server.stop()


# --- system packages (tests/system.py) -------------------------------------------------------

SKIPPED_BY_CHOICE: dict[str, int] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "system(*packages): the test needs these Debian packages")


def require_system(package: str) -> None:
    """Return when the Debian ``package`` is usable; else fail, or skip when told to out loud."""
    import system

    reason = system.problem(package)
    if reason is None:
        return
    if system.skipping_allowed():
        SKIPPED_BY_CHOICE[package] = SKIPPED_BY_CHOICE.get(package, 0) + 1
        pytest.skip(f"{package}: {reason} ({system.SKIP_VARIABLE}=1)")
    pytest.fail(
        f"{package} is not usable here ({reason}). `bash course.sh test` sets the system packages up "
        f"when run as root; otherwise: {system.install_hint([package])}. Or set "
        f"{system.SKIP_VARIABLE}=1 to skip the tests that need it knowingly.",
        pytrace=False,
    )


def pytest_runtest_setup(item):
    for marker in item.iter_markers("system"):
        for package in marker.args:
            require_system(package)


def pytest_terminal_summary(terminalreporter):
    import system

    if SKIPPED_BY_CHOICE:
        what = ", ".join(
            f"{count} needing {package} ({system.PACKAGES[package][0]})"
            for package, count in sorted(SKIPPED_BY_CHOICE.items())
        )
        terminalreporter.write_line(
            f"SKIPPED BY CHOICE ({system.SKIP_VARIABLE}=1): {sum(SKIPPED_BY_CHOICE.values())} tests: {what}",
            red=True,
            bold=True,
        )


# --- order ------------------------------------------------------------------------------------

# `bash course.sh test` runs two pytest-xdist workers that take whole files (--dist loadfile), in
# collection order: the longest files first, so that the two workers finish at about the same time.
LONGEST_FIRST = (
    "test_tampering.py",
    "test_limits.py",
    "test_student_path.py",
    "test_cluster.py",
    "test_items.py",
    "test_hostile.py",
    "test_validity.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order
