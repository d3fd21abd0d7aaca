"""What a student must never see, and a scan of files for it.

A *secret line* is a line of 25 or more characters (stripped) from a solution region, a hidden-test
region or a manually graded answer cell (model answer and mark scheme) of a source notebook, or
from the validity catalogues (``tests/validity/``: their right and wrong answers are answers too),
unless a notebook shows that line in the open (a visible check may repeat a line of a hidden one).
Shorter lines are too generic (``return x``) to tell anything. A hidden-test or catalogue line that
the course package's own code holds (``except Exception as error:``) is public too; solution and
mark-scheme lines never are.

``scan`` opens every file under a folder, and every member of every zip archive in it (wheels,
the problem-set zips, torch's ``.pt`` files), recursively, and reports each secret line found, and
the markers of an instructor's notebook in any file but Python code (``convae.notebooks`` names
them to strip them). Notebooks are also read as notebooks, so that a line JSON escapes (quotes,
backslashes) is still found.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import convae
from convae import notebooks

PACKAGE = Path(convae.__file__).parent

MIN_LENGTH = 25
MARK_SCHEME = "**Mark scheme"
REGIONS = {
    "solution": ("BEGIN SOLUTION", "END SOLUTION"),
    "hidden": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"),
}
ALL_KINDS = ("solution", "hidden", "manual", "mark_scheme")
# Markers that only an instructor's notebook holds.
MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "BEGIN MARK SCHEME",
    "Mark scheme",
    "Model answer",
)


def region_lines(lines: Iterable[str], begin: str, end: str) -> list[str]:
    """The lines strictly between ``begin`` and ``end`` marker lines."""
    inside, found = False, []
    for line in lines:
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            found.append(line)
    return found


def public_lines(path: Path) -> set[str]:
    """Stripped lines of a source notebook that students see: outside solutions, hidden tests and
    manually graded answers."""
    public = set()
    for cell in notebooks.read(path).cells:
        if notebooks.is_manual_answer(cell):
            continue
        inside = False
        for line in notebooks.visible_part(cell.source).splitlines():
            if REGIONS["solution"][0] in line:
                inside = True
            elif REGIONS["solution"][1] in line:
                inside = False
            elif not inside:
                public.add(line.strip())
    return public


def source_secrets(path: Path, kinds=ALL_KINDS) -> set[str]:
    """The secret lines of one source notebook, of the given kinds (``ALL_KINDS``)."""
    secrets = []
    for cell in notebooks.read(path).cells:
        lines = cell.source.splitlines()
        if notebooks.is_manual_answer(cell):
            if "manual" in kinds:
                secrets += lines
            if "mark_scheme" in kinds and MARK_SCHEME in cell.source:
                secrets += cell.source.split(MARK_SCHEME, 1)[1].splitlines()
        if not notebooks.nbgrader_meta(cell):
            continue
        for kind, (begin, end) in REGIONS.items():
            if kind in kinds:
                secrets += region_lines(lines, begin, end)
    shown = "\n".join(public_lines(path))  # a line shown as part of a longer one is shown too
    return {line for line in long_lines(secrets) if line not in shown}


def long_lines(lines: Iterable[str]) -> set[str]:
    return {line.strip() for line in lines if len(line.strip()) >= MIN_LENGTH}


def package_lines() -> set[str]:
    """Every stripped line of the course package's own Python code."""
    return {
        line.strip()
        for path in PACKAGE.rglob("*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
    }


def course_secrets(root: Path) -> set[str]:
    """Every secret line of the course: source notebooks and validity catalogues, less what any
    notebook or the package's code shows (answers stay secret even there)."""
    sources = sorted((root / "source").glob("*/*.ipynb"))
    shown = set().union(*(public_lines(path) for path in sources))
    answers = set().union(*(source_secrets(path, ("solution", "manual", "mark_scheme")) for path in sources))
    checks = set().union(*(source_secrets(path, ("hidden",)) for path in sources))
    for catalogue in sorted((root / "tests" / "validity").glob("*.py")):
        checks |= catalogue_answers(catalogue)
    shown_text = "\n".join(shown)  # a line shown as part of a longer one is shown too
    return {line for line in answers | (checks - package_lines()) if line not in shown_text}


def catalogue_answers(path: Path) -> set[str]:
    """Lines of one validity catalogue's answers: its decorated functions and classes (the right and
    wrong answers), and its multi-line strings (answers written as source text)."""
    text = path.read_text(encoding="utf-8")
    lines = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.decorator_list:
            lines += text.splitlines()[node.lineno - 1 : node.end_lineno]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "\n" in node.value:
            lines += node.value.splitlines()
    return long_lines(lines)


# --- scanning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leak:
    file: str  # path in the scanned folder; "archive.zip!member" inside archives
    secret: str


@dataclass
class ScanReport:
    files: int = 0  # files and archive members opened
    secrets: int = 0  # secret lines looked for
    leaks: list[Leak] = None

    def __post_init__(self):
        self.leaks = self.leaks or []


def members(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """``(name, bytes)`` of a file and, when it is a zip archive, of every member, recursively."""
    yield name, data
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            if not info.is_dir():
                yield from members(f"{name}!{info.filename}", archive.read(info))


def readable_texts(name: str, data: bytes) -> list[str]:
    """The texts to search in a file: its decoded text and, for a notebook, its cells as text."""
    texts = [data.decode("utf-8", errors="replace")]
    if name.endswith(".ipynb"):
        try:
            nb = json.loads(data)
            for cell in nb.get("cells", []):
                texts.append("".join(cell.get("source", [])))
                for output in cell.get("outputs", []):
                    texts.append(json.dumps(output, ensure_ascii=False))
                    texts.append("".join(output.get("text", [])))
        except (ValueError, AttributeError):
            pass  # not a notebook after all: its raw text is searched
    return texts


def is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\0" not in data


def find_secrets(name: str, data: bytes, secrets: set[str]) -> list[str]:
    """The secret lines in one file. Text is searched for each secret anywhere; binary data (weights,
    arrays) line by line, since a searched substring costs too much there and code only ever lands
    in it as a whole line (a pickle's string, an archive member)."""
    if not is_text(data):
        lines = {line.strip().decode("utf-8", errors="replace") for line in data.split(b"\n")}
        return sorted(secrets & lines)
    texts = readable_texts(name, data)
    markers = () if name.endswith(".py") else MARKERS
    found = [marker for marker in markers if any(marker in text for text in texts)]
    return found + sorted(secret for secret in secrets if any(secret in text for text in texts))


def scan(folder: Path, secrets: set[str]) -> ScanReport:
    """Every file under ``folder`` (and in its archives) searched for ``secrets`` and the markers."""
    report = ScanReport(secrets=len(secrets))
    seen: set[str] = set()  # identical contents (the wheel in every zip) are searched once
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for name, data in members(str(path.relative_to(folder)), path.read_bytes()):
            report.files += 1
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            report.leaks += [Leak(name, secret) for secret in find_secrets(name, data, secrets)]
    return report
