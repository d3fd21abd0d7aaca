"""The one wrapper around the nbgrader command line, shared by the course pipeline and grading.

``python -m convae.grading.commands ARGS`` is ``nbgrader ARGS`` without two start-up costs of
nbgrader's own script, each paid again by every command: jsonschema's optional import of
rfc3987_syntax, which builds a grammar for IRI formats that notebooks never use (~1.5 s), and a
new gradebook's ``alembic heads``, a subprocess that imports nbgrader again (~2.5 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def skip_iri_grammar() -> None:
    """Make jsonschema's optional import of rfc3987_syntax fail: where that is installed, jsonschema
    builds its grammar for IRI formats, which notebooks never use, at a cost of seconds to every
    process that loads nbformat or nbgrader. Call it before jsonschema is imported."""
    sys.modules.setdefault("rfc3987_syntax", None)


def environment_bin_on_path() -> Path:
    """nbgrader runs `alembic` and the kernels by name: this environment's bin must come first."""
    bin_dir = Path(sys.executable).parent
    if os.environ.get("PATH", "").split(os.pathsep)[0] != str(bin_dir):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return bin_dir


def gradebook_url(root: Path, db_url: str | None = None) -> str:
    """The gradebook's SQLAlchemy URL: ``db_url`` if given, else ``gradebook.db`` in the course."""
    return db_url or f"sqlite:///{root / 'gradebook.db'}"


def course_config(root: Path):
    """The course's ``nbgrader_config.py`` as a traitlets ``Config``."""
    from traitlets.config.loader import PyFileConfigLoader

    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def nbgrader_api(root: Path, overrides: dict):
    """nbgrader's Python API on the course, its configuration with ``overrides`` merged in."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    config = course_config(root)
    config.merge(Config(overrides))
    return NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)


def nbgrader(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run an nbgrader subcommand on the course at ``root``; raises when it fails."""
    bin_dir = environment_bin_on_path()
    cli = [str(bin_dir / "python"), "-m", "convae.grading.commands"]
    cmd = [*cli, *args, f"--CourseDirectory.root={root}", "--log-level=WARN"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc


def assignments(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "source").iterdir() if p.is_dir() and not p.name.startswith("."))


def alembic_head() -> str:
    """The gradebook schema's current revision, as ``alembic heads`` prints it, read in-process."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    config = Config()
    config.set_main_option("script_location", ALEMBIC_DIR)
    return ScriptDirectory.from_config(config).get_current_head()


def read_alembic_head_in_process() -> None:
    """Make a new gradebook read its schema revision here, not from an ``alembic`` subprocess."""
    import nbgrader.api

    nbgrader.api.get_alembic_version = alembic_head


def gradebook(url: str):
    """nbgrader's Gradebook at ``url`` (created when missing)."""
    from nbgrader.api import Gradebook

    read_alembic_head_in_process()
    return Gradebook(url)


def nbgrader_main(argv: list[str]) -> int:
    skip_iri_grammar()
    from nbgrader.apps.nbgraderapp import NbGraderApp

    read_alembic_head_in_process()
    NbGraderApp.launch_instance(argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(nbgrader_main(sys.argv[1:]))
