"""Tampering with the grade from inside the kernel: the real pipeline, sandbox on.

Every attack here worked against in-kernel grading (the test cells ran in the student's
process, and nbgrader scored what that process printed): it forged full marks for stubs, or
leaked hidden tests into the feedback. With the judge, test cells run in another process and
their outputs are written from its verdict, so each attack must earn exactly what the answers
beside it deserve, listed with the case. The class has three notebooks: ps1/conv_arithmetic,
ps1/transposed_convolutions (graded second, after a complete conv_arithmetic whose graded copy,
hidden tests included, nbgrader has just written) and ps3/vae_theory. An honest student is graded
in the same batch; grading the batch again gives the same grades; no hidden-test line reaches any
feedback page or any output of a graded notebook.
"""

import html
import re
import shutil
from dataclasses import dataclass

import pytest
from conftest import copy_course, release_course

from convae import course, notebooks
from convae.grading import pipeline
from convae.leaks import public_lines, source_secrets

pytestmark = pytest.mark.system("bubblewrap")

KEPT = {"ps1": ("conv_arithmetic", "transposed_convolutions"), "ps3": ("vae_theory", "vae_models")}
FULL = {"conv_arithmetic": 13, "transposed_convolutions": 17, "vae_theory": 14, "vae_models": 17}
TIMEOUT = 15  # per cell, so that the hanging cases cost little

# --- attacks: code a student puts in a cell of their own, after the imports ---------------------

DROP_EVERY_LATER_CELL = {
    "input-transformer-cleanup": "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
    "input-transformer-post": "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])",
    "input-transformer-line": (
        "get_ipython().input_transformer_manager.line_transforms.append(lambda lines: ['pass\\n'])"
    ),
}

ASSERTS_TO_PASS = """
import ast
class _NoAsserts(ast.NodeTransformer):
    def visit_Assert(self, node):
        return ast.Pass()
get_ipython().ast_transformers.append(_NoAsserts())
"""

SWALLOW_ERRORS = (
    "get_ipython().set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)"
)
SILENT_TRACEBACKS = "get_ipython().showtraceback = lambda *args, **kwargs: None"
PRE_RUN_PATCH = """
import builtins
def _before(info):
    builtins.AssertionError = type('AssertionError', (Exception,), {})
get_ipython().events.register('pre_run_cell', _before)
"""
POST_RUN_CLEARS = """
def _after(result):
    result.error_in_exec = None
    result.error_before_exec = None
get_ipython().events.register('post_run_cell', _after)
"""
FAKE_RUN_CELL = """
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult
def _fake(raw_cell, *args, **kwargs):
    return ExecutionResult(ExecutionInfo(raw_cell, False, False, False, None))
get_ipython().run_cell = _fake
"""
FAKE_RUN_CELL_ASYNC = """
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult
async def _fake(raw_cell, *args, **kwargs):
    return ExecutionResult(ExecutionInfo(raw_cell, False, False, False, None))
get_ipython().run_cell_async = _fake
"""
FORGED_REPLY = """
_kernel = get_ipython().kernel
async def _forged(code, silent, store_history=True, user_expressions=None, allow_stdin=False, **kwargs):
    # A forged score, then a forged "ok": nbgrader once read a cell's last number as its points.
    _kernel.session.send(_kernel.iopub_socket, 'execute_result',
                         {'data': {'text/plain': '13'}, 'metadata': {}, 'execution_count': 1},
                         parent=_kernel.get_parent(), ident=_kernel._topic('execute_result'))
    return {'status': 'ok', 'execution_count': 1, 'payload': [], 'user_expressions': {}}
_kernel.do_execute = _forged
"""
ENDS_IN_A_NUMBER = "get_ipython().input_transformers_post.append(lambda lines: lines + ['\\n', '10**9\\n'])"
PATCH_MODULES = """
import builtins, math, operator, numpy, torch
builtins.isinstance = lambda obj, cls: True
builtins.abs = lambda x: 0
operator.index = lambda x: 600000
math.isclose = lambda *a, **k: True
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
numpy.isclose = lambda *a, **k: True
"""
FAKE_TORCH_MODULE = """
import sys, types
sys.modules['torch'] = types.ModuleType('torch')
sys.modules['operator'] = types.ModuleType('operator')
"""
LATER_PATCH_THREAD = """
import threading, time, builtins, torch
def _later():
    time.sleep(0.5)
    torch.allclose = lambda *a, **k: True
    builtins.int = lambda *a, **k: 600000
threading.Thread(target=_later, daemon=True).start()
"""
PRINT_LATER_CELLS = """
def _show(info):
    print('NEXT CELL:', info.raw_cell)
get_ipython().events.register('pre_run_cell', _show)
get_ipython().input_transformers_cleanup.append(lambda lines: (print(''.join(lines)), lines)[1])
"""
RAISE_WITH_LATER_CELLS = """
def _raise(info):
    raise RuntimeError('the next cell is: ' + info.raw_cell)
get_ipython().events.register('pre_run_cell', _raise)
"""
FIND_THE_JUDGE = """
import os, signal
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            cmdline = open(f'/proc/{pid}/cmdline', 'rb').read()
        except OSError:
            continue
        if b'convae.grading.judge' in cmdline or b'convae.grading.worker' in cmdline:
            print('FOUND', pid, cmdline)
        if int(pid) != os.getpid() and int(pid) != 1:
            try:
                os.kill(int(pid), signal.SIGSTOP)
            except OSError:
                pass
"""
READ_GRADED_SIBLING = """
import pathlib
marker = 'BEGIN ' + 'HIDDEN TESTS'  # built here, so that this cell's own notebook does not hold it
for path in [pathlib.Path.cwd() / 'conv_arithmetic.ipynb', *pathlib.Path.cwd().parent.rglob('*.ipynb')]:
    try:
        text = path.read_text()
    except OSError:
        continue
    if marker in text:
        print('LEAKED HIDDEN TESTS', path)
        print(text)
"""

# --- attacks inside an answer: they act when the judge calls the function -----------------------

HOOK_ON_FIRST_CALL = """
def dense_param_count(in_shape, out_shape, bias=False):
    ip = get_ipython()
    if not getattr(ip, '_hooked', False):
        ip._hooked = True
        ip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])
    return 0
"""
RETURNS_ALWAYS_EQUAL = """
class _Anything(int):
    def __eq__(self, other):
        return True
    __hash__ = int.__hash__
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    return _Anything(0)
"""
RETURNS_TRUTHY_LOOKALIKE = """
class _Number:
    def __bool__(self):
        return True
    def __index__(self):
        return 600000
    def __float__(self):
        return 600000.0
    def __array__(self, *args, **kwargs):
        import numpy
        return numpy.array(600000)
    def __eq__(self, other):
        return True
def dense_param_count(in_shape, out_shape, bias=False):
    return _Number()
"""
RETURNS_TORCH_FUNCTION_TRICK = """
import torch
class _Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        result = super().__torch_function__(func, types, args, kwargs or {})
        if getattr(func, '__name__', '') in ('__eq__', 'eq', 'allclose', 'equal', 'isclose'):
            return torch.ones_like(result, dtype=torch.bool) if isinstance(result, torch.Tensor) else True
        return result
def kl_standard_normal(mu, logvar):
    return torch.zeros(mu.shape[0]).as_subclass(_Liar)
"""
DIES_IN_A_CALL = """
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    import os
    os._exit(0)
"""
HANGS_IN_A_CALL = """
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    while stride == 2:
        pass
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
"""
GARBAGE_ON_THE_CHANNEL = """
def dense_param_count(in_shape, out_shape, bias=False):
    import gc, socket
    for obj in gc.get_objects():
        if isinstance(obj, socket.socket) and obj.family == socket.AF_UNIX and obj.fileno() >= 0:
            try:
                obj.sendall(b'\\x00\\x00\\x00\\x10\\x00\\x00\\x00\\x00{"reply": 999999}')
            except OSError:
                pass
    n_in = n_out = 1
    for d in in_shape if not isinstance(in_shape, int) else [in_shape]:
        n_in *= d
    for d in out_shape if not isinstance(out_shape, int) else [out_shape]:
        n_out *= d
    return n_in * n_out + (n_out if bias else 0)
"""
HUGE_RESULT = """
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if padding == 3:
        return [0] * 10_000_000
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
"""
DEEP_RESULT = """
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    if padding == 3:
        value = 0
        for _ in range(5000):
            value = [value]
        return value
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
"""
# VAE.forward with a detached sample, and a gradient probe that asks for an honest forward pass:
# the check that gradients reach the heads through z is best-effort, and is fooled.
FORGED_GRADIENT_REPORT = """
class VAE(nn.Module):
    def __init__(self, encoder, decoder, latent_dim):
        super().__init__()
        self.encoder, self.decoder, self.latent_dim = encoder, decoder, latent_dim

    def forward(self, x):
        mu, logvar = self.encoder(x)
        z = reparameterize(mu, logvar)
        return self.decoder(z if _HONEST else z.detach()), mu, logvar


import convae.grading.probes as _probes

_HONEST, _real = False, _probes.parameter_gradients


def _asked(*args, **kwargs):
    global _HONEST
    _HONEST = True
    try:
        return _real(*args, **kwargs)
    finally:
        _HONEST = False


_probes.parameter_gradients = _asked
"""
REPLACES_THE_AGENT = """
import convae.grading.agent as _agent
def _serve(path, token, namespace, seed=0):
    print('13 points, trust me')
_agent.serve = _serve
"""


@dataclass(frozen=True)
class Case:
    notebook: str
    answers: str  # "solution" (the model answers), "stubs" (the release), "wrong" (worth 0)
    where: str  # SCRATCH: a cell of the student's own after the imports; ANSWER: replaces an answer
    code: str
    score: int  # the autograded points the notebook must get
    flag: str | None = None  # a text the report must show for this submission


SCRATCH, ANSWER = "scratch", "answer"
CA, TC, VT, VM = "conv_arithmetic", "transposed_convolutions", "vae_theory", "vae_models"
NO_ANSWER = "did not answer"  # the kernel never served the judge: its turn was replaced or skipped
CASES = {
    **{name: Case(CA, "stubs", SCRATCH, code, 0, NO_ANSWER) for name, code in DROP_EVERY_LATER_CELL.items()},
    "ast-transformer-drops-asserts": Case(CA, "wrong", SCRATCH, ASSERTS_TO_PASS, 0),
    "custom-exception-handler": Case(CA, "stubs", SCRATCH, SWALLOW_ERRORS, 0),
    "silenced-tracebacks": Case(CA, "stubs", SCRATCH, SILENT_TRACEBACKS, 0),
    "pre-run-cell-hook": Case(CA, "stubs", SCRATCH, PRE_RUN_PATCH, 0),
    "post-run-cell-hook": Case(CA, "stubs", SCRATCH, POST_RUN_CLEARS, 0),
    "replaced-run-cell": Case(CA, "stubs", SCRATCH, FAKE_RUN_CELL, 0, NO_ANSWER),
    "replaced-run-cell-async": Case(CA, "stubs", SCRATCH, FAKE_RUN_CELL_ASYNC, 0, NO_ANSWER),
    "forged-execute-reply": Case(CA, "stubs", SCRATCH, FORGED_REPLY, 0, NO_ANSWER),
    "cells-end-in-a-large-number": Case(CA, "stubs", SCRATCH, ENDS_IN_A_NUMBER, 0),
    "patched-builtins-operator-math-torch-numpy": Case(CA, "wrong", SCRATCH, PATCH_MODULES, 0),
    "fake-modules-in-sys-modules": Case(CA, "wrong", SCRATCH, FAKE_TORCH_MODULE, 0),
    "thread-patches-later": Case(CA, "wrong", SCRATCH, LATER_PATCH_THREAD, 0),
    "hook-installed-on-first-call": Case(CA, "solution", ANSWER, HOOK_ON_FIRST_CALL, 0, NO_ANSWER),
    # conv2d_output_size's test is worth 4, dense_param_count's and conv2d_param_count's 3 each
    "always-equal-int": Case(CA, "solution", ANSWER, RETURNS_ALWAYS_EQUAL, 13 - 4),
    "bool-index-float-array-lookalike": Case(CA, "solution", ANSWER, RETURNS_TRUTHY_LOOKALIKE, 13 - 3),
    "prints-later-cells": Case(CA, "stubs", SCRATCH, PRINT_LATER_CELLS, 0),
    "raises-with-later-cells": Case(CA, "solution", SCRATCH, RAISE_WITH_LATER_CELLS, 13),
    "dies-in-a-call": Case(CA, "solution", ANSWER, DIES_IN_A_CALL, 13 - 3, "KernelDied"),
    "hangs-in-a-call": Case(CA, "solution", ANSWER, HANGS_IN_A_CALL, 13 - 4, "did not answer within"),
    "garbage-on-the-channel": Case(CA, "solution", ANSWER, GARBAGE_ON_THE_CHANNEL, 13 - 3, "cannot read"),
    "huge-result": Case(CA, "solution", ANSWER, HUGE_RESULT, 13 - 4, "cannot read"),
    "deeply-nested-result": Case(CA, "solution", ANSWER, DEEP_RESULT, 13 - 4),
    "replaces-the-agent": Case(VT, "stubs", SCRATCH, REPLACES_THE_AGENT, 0, NO_ANSWER),
    "vae-theory-asserts-to-pass": Case(VT, "stubs", SCRATCH, ASSERTS_TO_PASS, 0),
    "vae-theory-drops-later-cells": Case(
        VT, "stubs", SCRATCH, DROP_EVERY_LATER_CELL["input-transformer-post"], 0, NO_ANSWER
    ),
    # kl_standard_normal: its two tests (3 + 1), and vae_loss (3), which calls it
    "vae-theory-torch-function-liar": Case(VT, "solution", ANSWER, RETURNS_TORCH_FUNCTION_TRICK, 14 - 7),
    "vae-theory-patched-torch": Case(VT, "stubs", SCRATCH, PATCH_MODULES, 0),
    "vae-models-forged-gradient-report": Case(VM, "solution", ANSWER, FORGED_GRADIENT_REPORT, 17),
    "looks-for-the-judge": Case(TC, "solution", SCRATCH, FIND_THE_JUDGE, 17),
    "reads-the-graded-sibling": Case(TC, "solution", SCRATCH, READ_GRADED_SIBLING, 17),
    "transposed-drops-later-cells": Case(
        TC, "stubs", SCRATCH, DROP_EVERY_LATER_CELL["input-transformer-line"], 0, NO_ANSWER
    ),
}


def assignment_of(notebook):
    return next(a for a, kept in KEPT.items() if notebook in kept)


def wrong_answers(root):
    """The example class's plausible mistakes for conv_arithmetic (each worth nothing)."""
    students = course.load_example_class(root)
    return students["example-wrong"]["ps1/conv_arithmetic"]


def submission(root, case: Case):
    notebook, answers = case.notebook, case.answers
    assignment = assignment_of(notebook)
    source = notebooks.read(root / "source" / assignment / f"{notebook}.ipynb")
    nb = notebooks.read(root / "release" / assignment / f"{notebook}.ipynb")
    wanted = {"solution": course.SOLUTION, "stubs": {}, "wrong": wrong_answers(root)}[answers]
    for cell in nb.cells:
        grade_id = notebooks.grade_id(cell)
        answer = course.SOLUTION if wanted == course.SOLUTION and notebooks.is_answer_cell(cell) else None
        if isinstance(wanted, dict):
            answer = wanted.get(grade_id)
        if answer is not None and notebooks.is_answer_cell(cell):
            cell.source = course.answer_text(answer, notebooks.cells_by_id(source)[grade_id])
    code = case.code
    if case.where == SCRATCH:
        index = next(i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == "imports")
        nb.cells.insert(index + 1, notebooks_new_code_cell(code))
    else:
        answers = {notebooks.grade_id(c): c for c in nb.cells if notebooks.is_answer_cell(c)}
        names = re.findall(r"^(?:def|class) (\w+)", code, re.M)
        target = answers[next(name for name in names if name in answers)]  # the answer it replaces
        target.source = code.strip()
    return nb


def notebooks_new_code_cell(code):
    import nbformat

    return nbformat.v4.new_code_cell(code.strip())


def hidden_lines(root) -> set[str]:
    """Every line of 25 or more characters of a hidden test that no notebook shows in the open
    (one notebook's hidden `except NotImplementedError:` is another's locked code)."""
    paths = sorted((root / "source").glob("*/*.ipynb"))
    shown = {line.strip() for path in paths for line in public_lines(path)}
    return set().union(*(source_secrets(path, kinds=("hidden",)) for path in paths)) - shown


@pytest.fixture(scope="module")
def tampering_class(tmp_path_factory):
    root = copy_course(tmp_path_factory.mktemp("tampering"))
    for assignment in (root / "source").iterdir():
        if assignment.name not in KEPT:
            shutil.rmtree(assignment)
            continue
        for path in assignment.glob("*.ipynb"):
            if path.stem not in KEPT[assignment.name]:
                path.unlink()
    release_course(root)
    for assignment in KEPT:
        course.build_submission(root, "honest", course.SOLUTION, assignment)
    for student, case in CASES.items():
        assignment = assignment_of(case.notebook)
        course.build_submission(root, student, course.SOLUTION, assignment)  # the other notebook: complete
        target = root / "submitted" / student / assignment / f"{case.notebook}.ipynb"
        notebooks.write(submission(root, case), target)
    settings = pipeline.Settings(root, sandbox=True, timeout=TIMEOUT, memory=3 * 2**30)
    results = {(r.student, r.assignment): r for r in pipeline.grade_class(settings, jobs=2, progress=False)}
    grades = {(g.student, g.notebook): g.score for g in course.notebook_grades(root)}
    return root, settings, results, grades


@pytest.mark.parametrize("student", sorted(CASES))
def test_tampering_earns_only_what_the_answers_deserve(tampering_class, student):
    _, _, results, grades = tampering_class
    case = CASES[student]
    result = results[(student, assignment_of(case.notebook))]
    assert result.ok, result.flags
    score = grades[(student, case.notebook)]
    assert score == case.score, f"{student}: {score} (flags: {result.flags})"
    if case.flag:
        assert any(case.flag in f for f in result.flags), result.flags


# vae_models runs the student's vae_theory answers: with part 1's stubs, VAE.forward (3) and
# negative_elbo (2) fail; with the liar's KL, negative_elbo does.
OTHER_SCORE = {
    **{(name, VM): 17 - 5 for name, case in CASES.items() if (case.notebook, case.answers) == (VT, "stubs")},
    ("vae-theory-torch-function-liar", VM): 17 - 2,
}


def test_the_other_notebook_of_an_attacked_submission_is_unaffected(tampering_class):
    _, _, _, grades = tampering_class
    for student, case in CASES.items():
        for other in KEPT[assignment_of(case.notebook)]:
            if other != case.notebook:
                want = OTHER_SCORE.get((student, other), FULL[other])
                assert grades[(student, other)] == want, (student, other)


def test_an_honest_student_in_the_same_batch_is_unaffected(tampering_class):
    _, _, results, grades = tampering_class
    for notebook, full in FULL.items():
        assert grades[("honest", notebook)] == full
    honest = [r for (student, _), r in results.items() if student == "honest"]
    assert len(honest) == len(KEPT) and all(r.ok and r.flags == [] for r in honest)


def test_no_hidden_test_line_reaches_feedback_or_any_output(tampering_class):
    root = tampering_class[0]
    secrets = hidden_lines(root)
    assert len(secrets) > 50
    pages = sorted((root / "feedback").rglob("*.html"))
    assert len(pages) >= len(CASES)
    for page in pages:
        text = html.unescape(page.read_text())
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{page}: {leaked[:3]}"
    for graded in sorted((root / "autograded").rglob("*.ipynb")):
        nb = notebooks.read(graded)
        sources = [cell.source for cell in nb.cells if not notebooks.is_test_cell(cell)]
        outputs = [
            str(output.get(key, ""))
            for cell in nb.cells
            for output in cell.get("outputs", [])
            for key in OUTPUT_KEYS
        ]
        text = "\n".join(sources + outputs)
        leaked = [line for line in secrets if line in text]
        assert not leaked, f"{graded}: {leaked[:3]}"
        printed = "\n".join(outputs)
        assert "LEAKED HIDDEN TESTS" not in printed and "FOUND" not in printed, graded


OUTPUT_KEYS = ("text", "data", "evalue", "traceback")


def test_grading_twice_gives_identical_grades(tampering_class):
    root, settings, _, grades = tampering_class
    again = [
        "honest",
        "hangs-in-a-call",
        "dies-in-a-call",
        "vae-theory-torch-function-liar",
        "garbage-on-the-channel",
    ]
    results = pipeline.grade_class(settings, jobs=2, students=again, progress=False)
    assert all(r.ok for r in results)
    regraded = {(g.student, g.notebook): g.score for g in course.notebook_grades(root)}
    assert regraded == grades
