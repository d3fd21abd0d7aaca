"""Hostile submissions, graded by the real pipeline (``convae.grading.pipeline``) in the sandbox.

Every case is the complete, correct ps1/conv_arithmetic submission plus one attack. A complete
submission earns 13 autograded points (2 more are manual), so each expected score says exactly
which tests the attack may cost. An honest student graded in the same batch must be unaffected,
and ``source/`` and the gradebook must be intact afterwards.
"""

import copy
import hashlib
import http.server
import shutil
import threading

import nbformat
import pytest
from conftest import copy_course, release_course

from convae import course, notebooks
from convae.grading import pipeline

NOTEBOOK = "conv_arithmetic"
FULL = 13  # autograded points of a correct submission
TIMEOUT = 15  # per-cell seconds for this run, so the infinite loop costs little

pytestmark = pytest.mark.system("bubblewrap")


def cell(nb, grade_id):
    return next(c for c in nb.cells if notebooks.grade_id(c) == grade_id)


def prepend(nb, grade_id, code):
    target = cell(nb, grade_id)
    target.source = code + "\n" + target.source


def scratch_cell_after(nb, grade_id, code):
    """A cell of the student's own (no nbgrader metadata) after ``grade_id``."""
    index = next(i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == grade_id)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(code))


def delete(nb, grade_id):
    nb.cells.remove(cell(nb, grade_id))


WRONG_OUTPUT_SIZE = (
    "def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):\n"
    "    import math\n"
    "    return math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1\n"
)
WRONG_PARAM_COUNT = (
    "def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):\n"
    "    k = kernel_size if isinstance(kernel_size, int) else kernel_size[0]\n"
    "    return out_channels * k * k + (out_channels if bias else 0)\n"
)
WRONG_TRANSPOSED = (
    "def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):\n"
    "    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + 1\n"
)


def infinite_loop(nb, ctx):
    prepend(nb, "dense_param_count", "while True:\n    pass")


def memory_bomb(nb, ctx):
    prepend(
        nb,
        "dense_param_count",
        "def _bomb():\n    hog = []\n    while True:\n        hog.append(bytearray(b'x' * 2**27))\n_bomb()",
    )


def kills_kernel(nb, ctx):
    prepend(nb, "conv2d_param_count", "import os\nos._exit(0)")


def sys_exit(nb, ctx):
    cell(nb, "dense_param_count").source += "\nimport sys\nsys.exit()"


def deletes_test_cells(nb, ctx):
    delete(nb, "test_dense_param_count")  # follows an answer cell
    delete(nb, "td2_q1")  # a locked cell after a plain locked markdown cell: restored from the release


def duplicates_grade_cells(nb, ctx):
    index = nb.cells.index(cell(nb, "test_conv2d_param_count"))
    nb.cells.insert(index, copy.deepcopy(nb.cells[index]))
    wrong = copy.deepcopy(cell(nb, "conv2d_output_size"))
    wrong.source = WRONG_OUTPUT_SIZE
    nb.cells.append(wrong)  # a second, wrong answer with the same grade_id is ignored


def changes_cell_types(nb, ctx):
    for grade_id in ("test_conv2d_output_size", "conv_transpose2d_output_size"):
        c = cell(nb, grade_id)
        c.cell_type = "markdown"
        c.pop("outputs", None)
        c.pop("execution_count", None)


def edits_locked_cells(nb, ctx):
    cell(nb, "conv_transpose2d_output_size").source = WRONG_TRANSPOSED
    cell(nb, "test_conv_transpose2d_output_size").source = "pass"
    cell(nb, "intro").source = "# my notes"


def monkeypatches_comparisons(nb, ctx):
    cell(nb, "conv2d_output_size").source = (
        "import numpy, torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
        "numpy.isclose = lambda *a, **k: True\nnumpy.allclose = lambda *a, **k: True\n" + WRONG_OUTPUT_SIZE
    )


def plants_fake_torch(nb, ctx):
    cell(nb, "conv2d_param_count").source = (
        "import sys, types, torch as _real\n"
        "class _Layer:\n    def __init__(self, c_in, c_out, k, bias=True):\n"
        "        self.n = c_out * (k if isinstance(k, int) else k[0]) ** 2 + (c_out if bias else 0)\n"
        "    def parameters(self):\n        return [_real.zeros(self.n)]\n"
        "class _Nn(types.ModuleType):\n    Conv2d = _Layer\n    def __getattr__(self, name):\n"
        "        return getattr(_real.nn, name)\n"
        "class _Torch(types.ModuleType):\n    nn = _Nn('torch.nn')\n    def __getattr__(self, name):\n"
        "        return getattr(_real, name)\n"
        "sys.modules['torch'] = _Torch('torch')\n" + WRONG_PARAM_COUNT
    )


def always_equal_result(nb, ctx):
    cell(nb, "conv2d_output_size").source = (
        "class _Anything(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):\n    return _Anything(0)\n"
    )


def floods_stderr(nb, ctx):
    scratch_cell_after(
        nb, "imports", "import sys\nfor _ in range(20000):\n    sys.stderr.write('x' * 250 + '\\n')"
    )


def huge_output(nb, ctx):
    scratch_cell_after(nb, "imports", "print('y' * (100 * 2**20))")


def network_request(nb, ctx):
    scratch_cell_after(
        nb,
        "imports",
        (
            "import urllib.request\n"
            "try:\n"
            f"    print(urllib.request.urlopen('http://127.0.0.1:{ctx['port']}/leak', timeout=3).read())\n"
            "except Exception as error:\n"
            "    print('network blocked:', type(error).__name__)"
        ),
    )


def reads_course_files(nb, ctx):
    root = ctx["root"]
    scratch_cell_after(
        nb,
        "imports",
        (
            "import ctypes, os, pathlib\n"
            # Root with capabilities could lift the mount that hides the course folder.
            f"print('unmount:', ctypes.CDLL(None).umount2(b'{root}', 2))\n"
            f"targets = [pathlib.Path('{root}') / 'gradebook.db', pathlib.Path('{root}') / 'source' / 'ps1' / "
            "'conv_arithmetic.ipynb']\n"
            "targets += [pathlib.Path.cwd().parents[i] / 'gradebook.db' for i in range(4)]\n"
            "for path in targets:\n"
            "    try:\n"
            "        text = path.read_bytes()\n"
            "        print('LEAKED', path, text[:2000])\n"
            "        path.write_bytes(b'overwritten')\n"
            "    except OSError as error:\n"
            "        print('blocked:', type(error).__name__)"
        ),
    )


def forges_kernel_messages(nb, ctx):
    # The kernel's own sockets: a message whose signature is wrong, which jupyter_client refuses
    # to read (ValueError: Invalid Signature) in the grader's process. The cell defines nothing.
    scratch_cell_after(
        nb,
        "imports",
        (
            "_kernel = get_ipython().kernel\n"
            "_kernel.iopub_socket.send_multipart([b'<IDS|MSG>', b'0' * 64, b'{}', b'{}', b'{}', b'{}'])\n"
            "import time\n"
            "time.sleep(1)"
        ),
    )


# case -> (how the notebook is attacked, expected autograded score)
CASES = {
    "infinite-loop": (infinite_loop, FULL - 3),  # dense answer never defined: its test and Q1
    "memory-bomb": (memory_bomb, FULL - 3),  # MemoryError before the dense answer is defined
    "kills-kernel": (kills_kernel, FULL - 3),  # conv2d_param_count lost: its test and Q2
    "sys-exit": (sys_exit, FULL),  # exits after defining the answer: nothing lost
    "deletes-test-cells": (deletes_test_cells, FULL),
    "duplicates-grade-cells": (duplicates_grade_cells, FULL),
    "changes-cell-types": (changes_cell_types, FULL - 3),  # the transposed answer became markdown
    "edits-locked-cells": (edits_locked_cells, FULL - 3),  # the edited test is restored and fails
    "monkeypatches-comparisons": (monkeypatches_comparisons, FULL - 4),  # wrong output size + Q3
    "plants-fake-torch": (plants_fake_torch, FULL - 3),  # wrong param count + Q2
    "always-equal-result": (always_equal_result, FULL - 4),
    "floods-stderr": (floods_stderr, FULL),
    "huge-output": (huge_output, FULL),
    "network-request": (network_request, FULL),
    "reads-course-files": (reads_course_files, FULL),
    "forges-kernel-messages": (forges_kernel_messages, FULL),  # costs its own cell only
}
BROKEN_FILES = {"invalid-json": b'{"cells": [', "missing-notebook": None}


class Recorder(http.server.BaseHTTPRequestHandler):
    hits = []

    def do_GET(self):  # noqa: N802 -- http.server's naming
        Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"hidden tests")

    def log_message(self, *args):
        pass


def digest(path):
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("hostile"))
    for path in (root / "source").iterdir():  # one notebook under attack keeps this fast
        if path.name != "ps1":
            shutil.rmtree(path)
    for path in (root / "source" / "ps1").glob("*.ipynb"):
        if path.stem != NOTEBOOK:
            path.unlink()
    release_course(root)
    course.build_submission(root, "honest", course.SOLUTION, "ps1")
    complete = notebooks.read(root / "submitted" / "honest" / "ps1" / f"{NOTEBOOK}.ipynb")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ctx = {"port": server.server_address[1], "root": root}
    for student, (attack, _) in CASES.items():
        nb = copy.deepcopy(complete)
        attack(nb, ctx)
        course.build_submission(root, student, {}, "ps1")
        notebooks.write(nb, root / "submitted" / student / "ps1" / f"{NOTEBOOK}.ipynb")
    for student, content in BROKEN_FILES.items():
        course.build_submission(root, student, {}, "ps1")
        path = root / "submitted" / student / "ps1" / f"{NOTEBOOK}.ipynb"
        path.unlink()
        if content is not None:
            path.write_bytes(content)
    before = {"source": digest(root / "source"), "gradebook": digest(root / "gradebook.db")}
    settings = pipeline.Settings(root, sandbox=True, timeout=TIMEOUT, memory=3 * 2**30)
    results = pipeline.grade_class(settings, jobs=2, progress=False)
    server.shutdown()
    grades = {g.student: g.score for g in course.notebook_grades(root) if g.notebook == NOTEBOOK}
    return root, {r.student: r for r in results}, grades, before


@pytest.mark.parametrize("student", sorted(CASES))
def test_attack_scores_what_it_should(hostile_class, student):
    _, results, grades, _ = hostile_class
    assert results[student].ok, results[student].flags
    assert grades[student] == CASES[student][1], (
        f"{student}: {grades[student]} (flags: {results[student].flags})"
    )


def test_honest_student_is_unaffected(hostile_class):
    _, results, grades, _ = hostile_class
    assert grades["honest"] == FULL and results["honest"].flags == []


@pytest.mark.parametrize("student", sorted(BROKEN_FILES))
def test_broken_file_is_flagged_and_graded_as_unanswered(hostile_class, student):
    root, results, grades, _ = hostile_class
    assert grades[student] == 0
    assert any("unanswered" in flag for flag in results[student].flags)
    report = (root / "autograded" / "grading_report.csv").read_text()
    assert f"{student},ps1,repaired" in report


def test_repairs_are_flagged(hostile_class):
    _, results, _, _ = hostile_class
    assert any("td2_q1 restored" in f for f in results["deletes-test-cells"].flags)
    assert any("duplicate" in f for f in results["duplicates-grade-cells"].flags)
    assert any("changed to markdown" in f for f in results["changes-cell-types"].flags)
    assert any("edited" in f for f in results["edits-locked-cells"].flags)


def test_course_files_and_gradebook_are_intact(hostile_class):
    root, _, _, before = hostile_class
    assert digest(root / "source") == before["source"]
    graded = notebooks.read(root / "autograded" / "reads-course-files" / "ps1" / f"{NOTEBOOK}.ipynb")
    printed = "".join(o.get("text", "") for c in graded.cells if c.cell_type == "code" for o in c.outputs)
    assert "LEAKED" not in printed and "blocked" in printed and "unmount: -1" in printed


def test_network_is_unreachable(hostile_class):
    assert Recorder.hits == []


def test_outputs_are_capped(hostile_class):
    root, _, _, _ = hostile_class
    for student in ("huge-output", "floods-stderr"):
        path = root / "autograded" / student / "ps1" / f"{NOTEBOOK}.ipynb"
        assert path.stat().st_size < 2_000_000, f"{student}: {path.stat().st_size:,} bytes"
        feedback = root / "feedback" / student / "ps1" / f"{NOTEBOOK}.html"
        assert feedback.stat().st_size < 2_000_000


def test_kernel_death_is_explained_in_the_graded_notebook(hostile_class):
    root, _, _, _ = hostile_class
    nb = notebooks.read(root / "autograded" / "kills-kernel" / "ps1" / f"{NOTEBOOK}.ipynb")
    outputs = cell(nb, "conv2d_param_count").outputs
    assert any(o.get("ename") == "KernelDied" for o in outputs)


def test_a_forged_kernel_message_costs_its_cell_and_says_why(hostile_class):
    _, results, _, _ = hostile_class
    flags = results["forges-kernel-messages"].flags
    assert any("the kernel sent a message the grader cannot read" in f for f in flags), flags
