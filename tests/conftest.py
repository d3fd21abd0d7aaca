import importlib.util
import shutil
import sys
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


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory):
    """A copy of the course with the release regenerated and the example class graded."""
    from convae import course

    root = copy_course(tmp_path_factory.mktemp("course"))
    course.grade_example_class(root)
    return root


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server on loopback for the session (skips where there is none)."""
    postgres_server = load_tool("postgres_server")
    if postgres_server.UNAVAILABLE is not None:
        pytest.skip(postgres_server.UNAVAILABLE)
    server = postgres_server.PostgresServer()
    try:
        yield server
    finally:
        server.stop()
