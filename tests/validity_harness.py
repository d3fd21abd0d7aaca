"""Run a notebook's autograder test cells in-process against candidate answers.

A catalogue (one module per notebook under ``tests/validity/``) lists, for each graded name,
the test cells that check it, alternative correct answers that must pass, and plausible wrong
answers that must fail a named test. The reference answer is read from ``source/``. Running
the tests' code directly takes seconds, where a real autograde per candidate would take
minutes; ``test_example_class.py`` proves the same cells behave alike under nbgrader.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import sys
import textwrap
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from convae import notebooks

REPO = Path(__file__).resolve().parents[1]


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

    # --- running ------------------------------------------------------------------------------
    def run(self, test_id: str, answers: dict[str, str], seed_offset: int = 0) -> Outcome:
        """Execute setup cells, every answer (reference unless overridden), then one test cell.

        The test cell's source is taken from ``source/``, hidden tests included. A non-zero
        ``seed_offset`` shifts every ``manual_seed(s)`` in the test cell to ``s + seed_offset``:
        tests reseed themselves, so this is how their statistical tolerances meet new samples.
        """
        cells = self.cells()
        namespace: dict = {"__name__": "__main__", "_SEED_OFFSET": seed_offset}
        for cell_id in self.setup:
            exec(compile(cells[cell_id].source, f"<{cell_id}>", "exec"), namespace)
        for answer_id in self.answer_ids():
            code = answers.get(answer_id, cells[answer_id].source)
            exec(compile(code, f"<answer {answer_id}>", "exec"), namespace)
        stderr = io.StringIO()
        error = None
        with contextlib.redirect_stderr(stderr), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # under nbgrader a warning lands on stderr
            try:
                source = cells[test_id].source
                if seed_offset:
                    source = source.replace("manual_seed(", "manual_seed(_SEED_OFFSET + ")
                exec(compile(source, f"<test {test_id}>", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 -- any failure of the test cell counts
                error = exc
        for w in caught:
            stderr.write(f"{w.category.__name__}: {w.message}\n")
        return Outcome(error is None and not stderr.getvalue(), error, stderr.getvalue())


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
