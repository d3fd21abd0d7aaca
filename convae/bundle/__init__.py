"""What students receive: ``python -m convae student-bundle [--assignment ps1 ...] [--out dist]``.

The bundle is built like a release, from the committed ``release/`` only:
- the release notebooks of the chosen problem sets;
- the students' course package, a wheel of the ``convae`` modules the notebooks import and what
  those import (teaching helpers, ``convae.grading.checks`` for the visible checks), with the
  shipped weights and the embedded data subset; no grading pipeline, judge, sandbox or review tool;
- ``requirements.txt`` (the pinned third-party packages of the grader's environment that a
  student's Jupyter needs) and ``environment.yml`` (conda);
- a students' README, ``SHA256SUMS``, one zip per problem set and one for the whole course.

It refuses to build from a stale release (regenerated from ``source/`` into a scratch copy and
compared byte for byte) and from unknown problem sets. Everything is written into a scratch folder,
every file and archive member is scanned for secret lines (``convae.leaks``), and only a clean
bundle replaces ``--out``: a refused build writes nothing. Builds are reproducible: the same commit
gives the same bytes (fixed timestamps in every archive).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import importlib.metadata
import os
import re
import shutil
import string
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

import convae
from convae import install_cell, leaks, notebooks
from convae.grading import commands

PACKAGE = Path(convae.__file__).parent
README_TEMPLATE = Path(__file__).with_name("students_readme.md")
# The students' course package is written for these versions and declares them; a student's
# `pip install` keeps any torch that satisfies them (Colab's 2.11 included).
PYTHON_RANGE = ">=3.11"
REQUIREMENTS = (
    "torch>=2.11",
    "numpy>=2.1",
    "matplotlib>=3.10",
    "tqdm>=4.66",
    "nbformat>=5.9",
    "ipython>=8.20",
    "safetensors>=0.4",
)
# The modules the visible checks call, besides those the notebooks import themselves.
ALWAYS = ("convae.grading.checks",)
# What a student's Jupyter needs beside the package: its pinned versions go in requirements.txt.
JUPYTER = ("jupyterlab", "ipykernel", "ipywidgets")
DESCRIPTION = "The students' package of the course From convolutions to VAEs: data, training, plots, checks"
EPOCH = 315532800  # 1980-01-01, the earliest time a zip can hold: same commit, same bytes
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


class BundleError(RuntimeError):
    """The bundle cannot be built; nothing was written."""


# --- what goes in ------------------------------------------------------------------------------


def chosen_assignments(root: Path, wanted: list[str] | None) -> list[str]:
    known = commands.assignments(root)
    unknown = sorted(set(wanted or ()) - set(known))
    if unknown:
        raise BundleError(f"unknown problem set {', '.join(unknown)}; the course has {', '.join(known)}")
    return [a for a in known if not wanted or a in wanted]


def check_release_is_fresh(root: Path) -> None:
    """Regenerate the release from ``source/`` in a scratch copy; it must equal ``release/``."""
    from convae import course

    with tempfile.TemporaryDirectory(prefix="convae-release-check-") as scratch:
        copy = Path(scratch)
        shutil.copytree(root / "source", copy / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        shutil.copy2(root / "nbgrader_config.py", copy / "nbgrader_config.py")
        course.generate_release(copy)
        stale = sorted(
            str(path.relative_to(copy / "release"))
            for path in (copy / "release").rglob("*.ipynb")
            if not (root / "release" / path.relative_to(copy / "release")).is_file()
            or (root / "release" / path.relative_to(copy / "release")).read_bytes() != path.read_bytes()
        )
    if stale:
        raise BundleError(
            f"release/ is stale ({', '.join(stale)} differ from a fresh regeneration of source/): "
            "run `bash course.sh release`, commit release/, then build the bundle"
        )


def imported_convae_modules(code: str) -> set[str]:
    """The ``convae`` modules some code imports (anywhere in it, lazily too)."""
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "convae"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] == "convae":
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if module_file(name) is not None}


def module_file(name: str) -> Path | None:
    """The file of a ``convae`` module, or None when ``name`` is not one (an attribute)."""
    if name == "convae":
        return PACKAGE / "__init__.py"
    relative = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / relative / "__init__.py", PACKAGE / relative.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def relative_imports(path: Path, name: str) -> set[str]:
    """``from . import x`` and ``from .x import y`` of a module, as absolute names."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
            module = f"{base}.{node.module}" if node.module else base
            found |= {module, *(f"{module}.{alias.name}" for alias in node.names)}
    return {n for n in found if module_file(n) is not None}


def notebook_code(path: Path) -> str:
    from IPython.core.inputtransformer2 import TransformerManager

    cells = [cell.source for cell in notebooks.read(path).cells if cell.cell_type == "code"]
    return "\n".join(TransformerManager().transform_cell(source) for source in cells)


def student_modules(release_paths: list[Path]) -> list[str]:
    """The modules of the students' package: what the notebooks import, closed under imports, with
    every enclosing package."""
    todo = set(ALWAYS).union(*(imported_convae_modules(notebook_code(p)) for p in release_paths))
    done: set[str] = set()
    while todo:
        name = todo.pop()
        done.add(name)
        parts = name.split(".")
        parents = {".".join(parts[:i]) for i in range(1, len(parts))}
        path = module_file(name)
        code = path.read_text(encoding="utf-8")
        todo |= (parents | imported_convae_modules(code) | relative_imports(path, name)) - done
    return sorted(done)


def third_party_imports(modules: list[str]) -> set[str]:
    """Top-level names of the non-standard-library packages the modules import."""
    found = set()
    for name in modules:
        for node in ast.walk(ast.parse(module_file(name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {n for n in found if n not in sys.stdlib_module_names and n not in ("convae", "__future__")}


def undeclared_imports(modules: list[str]) -> list[str]:
    """Third-party packages the modules import that ``REQUIREMENTS`` does not declare."""
    declared = {Requirement(r).name.lower() for r in REQUIREMENTS}
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for top in sorted(third_party_imports(modules)):
        names = {d.lower() for d in distributions.get(top, [top])}
        if not names & declared:
            missing.append(top)
    return missing


# --- the wheel --------------------------------------------------------------------------------


def write_project(stage: Path, modules: list[str]) -> None:
    """A setuptools project of just these modules and the assets, declaring the students' ranges."""
    for name in modules:
        source = module_file(name)
        target = stage / source.relative_to(PACKAGE.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    shutil.copytree(PACKAGE / "assets", stage / "convae" / "assets")
    packages = sorted({n for n in modules if module_file(n).name == "__init__.py"})
    dependencies = ",\n".join(f'    "{r}"' for r in REQUIREMENTS)
    (stage / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "convae"
version = "{convae.__version__}"
description = "{DESCRIPTION}"
requires-python = "{PYTHON_RANGE}"
dependencies = [
{dependencies},
]
classifiers = [
    "Programming Language :: Python :: 3.11",
    "Programming Language :: Python :: 3.12",
    "Programming Language :: Python :: 3.13",
]

[tool.setuptools]
packages = [{", ".join(f'"{name}"' for name in packages)}]

[tool.setuptools.package-data]
convae = ["assets/*"]
""",
        encoding="utf-8",
    )


def build_wheel(modules: list[str], out: Path) -> Path:
    """The students' wheel, built by setuptools (pip wheel) from a scratch project."""
    with tempfile.TemporaryDirectory(prefix="convae-wheel-") as scratch:
        stage = Path(scratch) / "project"
        write_project(stage, modules)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "PYTHONDONTWRITEBYTECODE": "1"}
        cmd = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        proc = subprocess.run(
            [*cmd, "--wheel-dir", str(out), str(stage)], capture_output=True, text=True, env=env
        )
        if proc.returncode != 0:
            raise BundleError(f"building the students' wheel failed:\n{proc.stderr[-3000:]}")
    wheels = sorted(out.glob("convae-*.whl"))
    if len(wheels) != 1:
        raise BundleError(f"expected one wheel in {out}, found {[w.name for w in wheels]}")
    return wheels[0]


# --- the pinned environment -------------------------------------------------------------------


def pinned_closure(roots: list[str]) -> dict[str, str]:
    """``{distribution: version}`` of ``roots`` and everything they require here (this
    environment's markers), as installed in this (the grader's) environment."""
    pins: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = canonical(name)
        if key in pins:
            continue
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement for another platform, not installed here
        pins[key] = f"{dist.metadata['Name']}=={dist.version.split('+')[0]}"
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return pins


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def students_requirements() -> str:
    roots = [Requirement(r).name for r in REQUIREMENTS] + list(JUPYTER)
    lines = sorted(pinned_closure(roots).values(), key=str.lower)
    header = (
        "# The versions the course is graded with (Python 3.11), for a student's own Jupyter.\n"
        "# pip install -r requirements.txt convae-*.whl   (see README.md)\n"
    )
    return header + "\n".join(lines) + "\n"


def environment_yml(wheel: Path) -> str:
    return (
        "# conda env create -f environment.yml   (run it in this folder: pip reads the files here)\n"
        "name: conv-to-vae\n"
        "channels:\n"
        "  - conda-forge\n"
        "dependencies:\n"
        "  - python=3.11\n"
        "  - pip\n"
        "  - pip:\n"
        "      - -r requirements.txt\n"
        f"      - ./{wheel.name}\n"
    )


# --- the README and the archives --------------------------------------------------------------


def notebook_table(root: Path, assignments: list[str]) -> str:
    from convae import course

    rows = ["| problem set | notebook | points (auto + written) |", "|---|---|---|"]
    for assignment in assignments:
        for path in course.source_notebooks(root, assignment):
            auto, manual = course.notebook_points(path)
            rows.append(f"| {assignment} | `{assignment}/{path.name}` | {auto:g} + {manual:g} |")
    return "\n".join(rows)


def students_readme(root: Path, assignments: list[str], wheel: Path, address: str) -> str:
    text = string.Template(README_TEMPLATE.read_text(encoding="utf-8")).safe_substitute(
        version=convae.__version__,
        wheel=wheel.name,
        python=PYTHON_RANGE,
        torch=next(r for r in REQUIREMENTS if r.startswith("torch")),
        address=address,
        notebooks=notebook_table(root, assignments),
    )
    left = re.findall(r"\$\{\w+\}", text)
    if left:
        raise BundleError(f"the students' README template has unknown fields {left}")
    return text


def write_zip(path: Path, folder: Path, files: list[Path], top: str) -> None:
    """A zip of ``files`` (relative to ``folder``) under the folder name ``top``, reproducibly."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(files):
            info = zipfile.ZipInfo(f"{top}/{file.as_posix()}", date_time=ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, (folder / file).read_bytes())


def sha256sums(folder: Path) -> str:
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        lines.append(
            f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.relative_to(folder).as_posix()}"
        )
    return "\n".join(lines) + "\n"


# --- the build ---------------------------------------------------------------------------------


def build(
    root: Path, out: Path, wanted: list[str] | None = None, check_fresh: bool = True
) -> leaks.ScanReport:
    """Build, scan and write the bundle into ``out`` (replaced); returns the leak scan's report."""
    assignments = chosen_assignments(root, wanted)
    if check_fresh:
        check_release_is_fresh(root)
    release_paths = [p for a in assignments for p in sorted((root / "release" / a).glob("*.ipynb"))]
    modules = student_modules(release_paths)
    missing = undeclared_imports(modules)
    if missing:
        raise BundleError(f"the students' package imports {missing}, which convae.bundle.REQUIREMENTS lacks")
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        report = write_bundle(root, scratch, assignments, release_paths, modules)
        if report.leaks:
            shown = "\n".join(f"  {leak.file}: {leak.secret}" for leak in report.leaks[:20])
            raise BundleError(
                f"{len(report.leaks)} secret line(s) found in the bundle; nothing written:\n{shown}"
            )
        if out.exists():
            shutil.rmtree(out)
        scratch.rename(out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def install_address(path: Path) -> str | None:
    """The address a release notebook's install cell installs the course package from."""
    cells = [c for c in notebooks.read(path).cells if notebooks.grade_id(c) == install_cell.GRADE_ID]
    return install_cell.address(cells[0].source) if cells else None


def write_bundle(root: Path, folder: Path, assignments, release_paths, modules) -> leaks.ScanReport:
    wheel = build_wheel(modules, folder)
    address = install_address(release_paths[0])
    for path in release_paths:
        target = folder / path.relative_to(root / "release")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    (folder / "requirements.txt").write_text(students_requirements(), encoding="utf-8")
    (folder / "environment.yml").write_text(environment_yml(wheel), encoding="utf-8")
    (folder / "README.md").write_text(students_readme(root, assignments, wheel, address), encoding="utf-8")
    common = [Path(wheel.name), Path("requirements.txt"), Path("environment.yml"), Path("README.md")]
    course_id = commands.course_config(root).CourseDirectory.course_id
    zips = folder / "zips"
    zips.mkdir()
    notebooks_of = {
        a: [p.relative_to(folder) for p in sorted((folder / a).glob("*.ipynb"))] for a in assignments
    }
    for assignment in assignments:
        files = common + notebooks_of[assignment]
        write_zip(zips / f"{course_id}-{assignment}.zip", folder, files, f"{course_id}-{assignment}")
    everything = common + [path for a in assignments for path in notebooks_of[a]]
    write_zip(zips / f"{course_id}.zip", folder, everything, course_id)
    (folder / "SHA256SUMS").write_text(sha256sums(folder), encoding="utf-8")
    return leaks.scan(folder, leaks.course_secrets(root))


# --- command line -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--assignment", action="append", help="only this problem set (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the bundle (default: dist/)")


def run(root: Path, args) -> int:
    out = (args.out or root / "dist").resolve()
    try:
        report = build(root, out, args.assignment)
    except BundleError as error:
        print(f"student-bundle: {error}", file=sys.stderr)
        return 2
    address = install_address(next(out.glob("*/*.ipynb")))
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        print(f"{path.stat().st_size / 2**20:8.2f} MiB  {path.relative_to(out)}")
    print(
        f"leak scan: {report.files} files and archive members, {report.secrets} secret lines, "
        f"{len(report.leaks)} found"
    )
    if install_cell.is_placeholder(address):
        print(
            f"warning: the notebooks install the course package from the placeholder {address}; "
            "set c.CoursePackage.url in nbgrader_config.py, run `bash course.sh release`, rebuild",
            file=sys.stderr,
        )
    elif not address.endswith("/" + next(out.glob("convae-*.whl")).name):
        print(f"warning: the notebooks install {address}, not this bundle's wheel", file=sys.stderr)
    print(f"bundle: {out}")
    return 0
