"""Judge a notebook's autograder test cells against candidate answers, as grading does.

A catalogue (one module per notebook under ``tests/validity/``) lists, for each graded name,
the test cells that check it, alternative correct answers that must pass, and plausible wrong
answers that must fail a named test. The reference answer is read from ``source/``.

Each run is judged the way grading judges it: the notebook's setup cells and the answers run in
a separate student process (``student_side``, forked from a server with torch imported), the test
cell runs in the judge (``convae.grading.judge``, here in the test process), and only values and
handles cross between them. That takes a fraction of a second per run, where a real autograde
per candidate would take many; ``test_example_class.py`` proves the same cells behave alike under
nbgrader. ``run_visible`` runs the release's visible checks in-process, as a student's own kernel
does.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import inspect
import io
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import student_side

from convae import notebooks
from convae.grading import judge

REPO = Path(__file__).resolve().parents[1]
CELL_SECONDS = 120


@dataclass(frozen=True)
class Variant:
    name: str  # the graded name it defines
    label: str  # short description, used in test ids
    source: str
    must_fail: str | None = None  # the test cell a wrong answer must fail
    raises: type[BaseException] = AssertionError


@dataclass(frozen=True)
class Outcome:
    passed: bool
    error: BaseException | None
    stderr: str


def names_read(source: str) -> set[str]:
    """The names a cell's code reads."""
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}


def decorated_definitions(path: Path, name: str) -> list[ast.stmt]:
    """Top-level decorated ``def``/``class`` statements called ``name``, in file order."""
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    tree = ast.parse(path.read_text())
    return [
        node for node in tree.body if isinstance(node, kinds) and node.name == name and node.decorator_list
    ]


def variant_source(func) -> str:
    """A function's code without its decorators. Classes must go through ``Catalogue``: for a
    class, ``inspect.getsource`` returns the first class of that name in the file."""
    if inspect.isclass(func):
        raise TypeError("use Catalogue.correct / Catalogue.wrong for classes")
    source = textwrap.dedent(inspect.getsource(func))
    node = ast.parse(source).body[0]
    return "\n".join(source.splitlines()[node.lineno - 1 :]) + "\n"


def definition_source(path: Path, node: ast.stmt) -> str:
    """A definition's code without its decorators (``node.lineno`` is the def/class line)."""
    lines = path.read_text().splitlines()[node.lineno - 1 : node.end_lineno]
    return textwrap.dedent("\n".join(lines)) + "\n"


@dataclass
class Catalogue:
    notebook: str  # "ps1/conv_arithmetic"
    tests: dict[str, list[str]]  # graded name -> grade_ids of the test cells that check it
    setup: list[str] = field(default_factory=lambda: ["imports"])  # cells run before answers
    # environment variables of the student's process (as grading sets CONVAE_SUBMISSION_DIR)
    environment: dict[str, str] = field(default_factory=dict)
    correct_variants: list[Variant] = field(default_factory=list)
    wrong_variants: list[Variant] = field(default_factory=list)
    _registered: Counter = field(default_factory=Counter)

    def variant_source(self, obj) -> str:
        """The source of this very definition, not an earlier one of the same name.

        A catalogue defines the same name many times, and ``inspect.getsource`` of a class
        returns the first class of that name; so the n-th registration of a name takes the n-th
        decorated definition of that name in the catalogue's file.
        """
        path = Path(inspect.getfile(obj))
        index = self._registered[obj.__name__]
        self._registered[obj.__name__] += 1
        return definition_source(path, decorated_definitions(path, obj.__name__)[index])

    def correct(self, obj=None, *, label: str | None = None):
        """Decorator: an alternative correct answer (label: its docstring's first line)."""

        def register(obj):
            label_ = label or obj.__doc__.split("\n")[0]
            self.correct_variants.append(Variant(obj.__name__, label_, self.variant_source(obj)))
            return obj

        return register(obj) if obj is not None else register

    def wrong(self, must_fail: str, label: str, raises: type[BaseException] = AssertionError):
        """Decorator: a plausible mistake that ``must_fail`` has to catch."""

        def register(obj):
            source = self.variant_source(obj)
            self.wrong_variants.append(Variant(obj.__name__, label, source, must_fail, raises))
            return obj

        return register

    # --- reading the notebook ----------------------------------------------------------------
    @property
    def source_path(self) -> Path:
        return REPO / "source" / f"{self.notebook}.ipynb"

    @property
    def release_path(self) -> Path:
        return REPO / "release" / f"{self.notebook}.ipynb"

    def cells(self, release: bool = False) -> dict:
        return notebooks.cells_by_id(notebooks.read(self.release_path if release else self.source_path))

    def answer_ids(self) -> list[str]:
        nb = notebooks.read(self.source_path)
        return [notebooks.grade_id(c) for c in nb.cells if notebooks.is_answer_cell(c)]

    def test_ids(self) -> list[str]:
        nb = notebooks.read(self.source_path)
        return [notebooks.grade_id(c) for c in nb.cells if notebooks.is_test_cell(c)]

    def checking_tests(self, name: str) -> list[str]:
        """The test cells an answer for ``name`` meets: its own, then those of every other graded
        name whose reference answer or test cells use it (``gaussian_cnn_cifar10`` builds the
        student's ``GaussianEncoder``). A correct answer must pass them all."""
        cells = self.cells()
        found = list(self.tests[name])
        for other, test_ids in self.tests.items():
            sources = [cells[other].source, *(cells[test_id].source for test_id in test_ids)]
            if other != name and any(name in names_read(source) for source in sources):
                found += [test_id for test_id in test_ids if test_id not in found]
        return found

    # --- running ------------------------------------------------------------------------------
    def student_cells(self, answers: dict[str, str]) -> list[tuple[str, str]]:
        """What the student's process runs before a test: setup cells, then every answer."""
        cells = self.cells()
        out = []
        if self.environment:
            out.append(("environment", f"import os\nos.environ.update({self.environment!r})"))
        out += [(cell_id, cells[cell_id].source) for cell_id in self.setup]
        for answer_id in self.answer_ids():
            out.append((f"answer {answer_id}", answers.get(answer_id, cells[answer_id].source)))
        return out

    def run(self, test_id: str, answers: dict[str, str], seed_offset: int = 0) -> Outcome:
        """Judge one test cell (from ``source/``, hidden tests included) against the answers.

        The student's process runs the setup cells and every answer (reference unless
        overridden); the judge runs the test cell. A non-zero ``seed_offset`` shifts every
        ``manual_seed(s)`` in the test cell to ``s + seed_offset`` and the student process's seed
        with it: tests reseed themselves, so this is how their tolerances meet new samples.
        """
        cells = self.cells()
        source = cells[test_id].source
        if seed_offset:
            source = source.replace("manual_seed(", f"manual_seed({seed_offset} + ")
        seed = zlib.crc32(test_id.encode()) + seed_offset  # grading seeds the student's process alike
        verdict, error = judge_in_student_process(
            self.student_cells(answers), cells["imports"].source, self.answer_ids(), test_id, source, seed
        )
        return Outcome(verdict.passed, error, "")

    def run_visible(self, test_id: str) -> Outcome:
        """The release's visible checks on the reference answers, in one process, as in a student's
        own kernel: they must pass and write nothing to stderr (nbgrader validate scores that 0)."""
        visible = notebooks.visible_part(self.cells()[test_id].source)
        namespace: dict = {"__name__": "__main__"}
        stderr = io.StringIO()
        error = None
        with (
            contextlib.redirect_stderr(stderr),
            warnings.catch_warnings(record=True) as caught,
            environment_restored(),
        ):
            warnings.simplefilter("always")  # in a kernel a warning lands on stderr
            try:
                for name, source in self.student_cells({}):
                    exec(compile(source, f"<{name}>", "exec"), namespace)
                exec(compile(visible, f"<visible {test_id}>", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 -- any failure of the test cell counts
                error = exc
        for w in caught:
            stderr.write(f"{w.category.__name__}: {w.message}\n")
        return Outcome(error is None and not stderr.getvalue(), error, stderr.getvalue())


@contextlib.contextmanager
def environment_restored():
    """Undo what a block does to ``os.environ`` (a catalogue's environment, set by its setup)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


_STUDENT_SERVER: dict = {}


def student_server(fresh: bool = False) -> Path:
    """The student-process fork server for this test session, started again if it has exited
    (it leaves after ten idle minutes, and other tests may run that long between two judgements)."""
    process = _STUDENT_SERVER.get("process")
    if process is not None and process.poll() is None and not fresh:
        return _STUDENT_SERVER["path"]
    folder = Path(tempfile.mkdtemp(prefix="convae-students-"))
    path = folder / "students.sock"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("student_side.py")), str(path)],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    atexit.register(process.kill)
    deadline = time.monotonic() + 120
    while not path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the student-process server did not start")
        time.sleep(0.05)
    _STUDENT_SERVER.update(process=process, path=path)
    return path


def judge_in_student_process(cells, imports, student_names, test_id, source, seed, cell_seconds=CELL_SECONDS):
    """(verdict, the exception the test raised or None): ``source`` judged against ``cells``."""
    folder = Path(tempfile.mkdtemp(prefix="convae-agent-"))
    path = folder / "agent.sock"
    token = secrets.token_hex(8)
    idle, idle_peer = socket.socketpair()  # the worker's control channel: here nobody aborts
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener, idle, idle_peer:
        listener.bind(str(path))
        listener.listen(1)
        try:
            pid = student_side.spawn(student_server(), cells, str(path), token, seed)
        except ConnectionRefusedError:  # it left just now, idle: a new one
            pid = student_side.spawn(student_server(fresh=True), cells, str(path), token, seed)
        try:
            start = time.monotonic()
            agent = judge.accept_agent(listener, idle, token, start + 60)
            if agent is None:
                raise RuntimeError("the student process never connected")
            notebook_judge = judge.NotebookJudge(imports, student_names)
            verdict = notebook_judge.run(source, test_id, agent, start + cell_seconds, cell_seconds)
            return verdict, notebook_judge.last_error
        finally:
            student_side.kill(pid)
            path.unlink(missing_ok=True)
            folder.rmdir()


def load_catalogues() -> list[Catalogue]:
    """Every ``catalogue`` defined by a module in ``tests/validity/``."""
    import importlib.util

    found = []
    for path in sorted((Path(__file__).parent / "validity").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"validity_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # inspect.getfile finds classes through sys.modules
        spec.loader.exec_module(module)
        found.append(module.catalogue)
    return found
