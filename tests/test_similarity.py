"""The similarity report on a class built for it: planted copies flagged, independent answers not.

The class (``submitted/`` of a course copy, no grading needed):
- ``indep-0`` ... ``indep-5``: independent students. Each takes, for every exercise, a different
  correct answer: the validity catalogues' alternatives (``tests/validity/*.py``), written
  separately, and for the two notebooks of short formulas (ps1/conv_arithmetic, ps3/vae_theory)
  three more answers per exercise written here, some on purpose the textbook formula that many
  students write alike. Where an exercise has fewer answers than students, the later students
  leave it unanswered.
- ``copy-<how>``: planted copies of ``indep-0`` (renamed variables, reordered definitions, added
  comments, changed whitespace, and all four at once).
- ``blank-1``, ``blank-2``: the release handed back untouched.
- ``sol-1``, ``sol-2``: both hand in the instructor's solution (flagged, unless it is published).
"""

from __future__ import annotations

import argparse
import ast
import csv
import html
import io
import re
import shutil
import textwrap
import tokenize
from pathlib import Path

import pytest
from conftest import REPO, copy_course

from convae import course
from convae.review import similarity

CATALOGUES = REPO / "tests" / "validity"
INDEPENDENT = [f"indep-{i}" for i in range(6)]
ORIGINAL = INDEPENDENT[0]

# --- more independent answers, for the notebooks of short formulas -----------------------------
# Written as different students would; the first of each is the copied student's (with a helper
# function beside the graded one, so that reordering definitions changes something).

EXTRA = {
    "ps1/conv_arithmetic": {
        "dense_param_count": [
            '''
def _numel(shape):
    if isinstance(shape, int):
        return shape
    total = 1
    for extent in shape:
        total = total * extent
    return total


def dense_param_count(in_shape, out_shape, bias=False):
    """Number of trainable parameters of a dense layer between two flattened shapes."""
    weights = _numel(in_shape) * _numel(out_shape)
    if bias:
        weights = weights + _numel(out_shape)
    return weights
''',
            '''
def dense_param_count(in_shape, out_shape, bias=False):
    """Number of trainable parameters of a dense layer between two flattened shapes."""
    import operator
    from functools import reduce

    def as_tuple(s):
        return (s,) if isinstance(s, int) else tuple(s)

    fan_in = reduce(operator.mul, as_tuple(in_shape), 1)
    fan_out = reduce(operator.mul, as_tuple(out_shape), 1)
    return fan_out * (fan_in + 1) if bias else fan_out * fan_in
''',
            '''
def dense_param_count(in_shape, out_shape, bias=False):
    """Number of trainable parameters of a dense layer between two flattened shapes."""
    def count(shape):
        if isinstance(shape, int):
            return shape
        if len(shape) == 0:
            return 1
        return shape[0] * count(shape[1:])

    params = count(in_shape) * count(out_shape)
    return params + count(out_shape) * int(bool(bias))
''',
        ],
        "conv2d_param_count": [
            '''
def _pair(value):
    return (value, value) if isinstance(value, int) else tuple(value)


def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    """Number of trainable parameters of torch.nn.Conv2d with these settings."""
    height, width = _pair(kernel_size)
    n_weights = out_channels * in_channels * height * width
    n_biases = out_channels if bias else 0
    return n_weights + n_biases
''',
            '''
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    """Number of trainable parameters of torch.nn.Conv2d with these settings."""
    try:
        kh, kw = kernel_size
    except TypeError:
        kh = kw = kernel_size
    total = in_channels * out_channels * kh * kw
    if bias:
        total += out_channels
    return total
''',
            '''
def conv2d_param_count(in_channels, out_channels, kernel_size, bias=True):
    """Number of trainable parameters of torch.nn.Conv2d with these settings."""
    import math
    sides = [kernel_size] * 2 if isinstance(kernel_size, int) else list(kernel_size)
    return math.prod([in_channels, out_channels, *sides]) + bias * out_channels
''',
        ],
        "conv2d_output_size": [
            '''
def _effective_kernel(kernel_size, dilation):
    return dilation * (kernel_size - 1) + 1


def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output length along one axis of torch.nn.Conv2d."""
    padded = size + 2 * padding
    return (padded - _effective_kernel(kernel_size, dilation)) // stride + 1
''',
            '''
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output length along one axis of torch.nn.Conv2d."""
    import math
    return math.floor((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1)
''',
            '''
def conv2d_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    """Output length along one axis of torch.nn.Conv2d."""
    out = (size + 2*padding - dilation*(kernel_size - 1) - 1)//stride + 1
    return out
''',
        ],
        "conv_transpose2d_output_size": [
            '''
def _dilated_span(kernel_size, dilation):
    return dilation * (kernel_size - 1) + 1


def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length along one axis of torch.nn.ConvTranspose2d."""
    full = (size - 1) * stride + _dilated_span(kernel_size, dilation)
    return full - 2 * padding + output_padding
''',
            '''
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length along one axis of torch.nn.ConvTranspose2d."""
    stretched = size + (size - 1) * (stride - 1)  # the input with stride - 1 zeros between samples
    border = dilation * (kernel_size - 1) - padding
    return stretched + 2 * border - dilation * (kernel_size - 1) + output_padding
''',
            '''
def conv_transpose2d_output_size(size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length along one axis of torch.nn.ConvTranspose2d."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel_size - 1) + output_padding + 1
''',
        ],
    },
    "ps3/vae_theory": {
        "kl_standard_normal": [
            '''
def _variance(logvar):
    return torch.exp(logvar)


def kl_standard_normal(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for every row: a tensor of shape (N,)."""
    per_dim = mu.pow(2) + _variance(logvar) - logvar - 1
    return 0.5 * per_dim.sum(dim=1)
''',
            '''
def kl_standard_normal(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for every row: a tensor of shape (N,)."""
    return torch.sum(0.5 * (logvar.exp() + mu * mu - 1.0 - logvar), dim=-1)
''',
            '''
def kl_standard_normal(mu, logvar):
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) for every row: a tensor of shape (N,)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp(), dim=1)
''',
        ],
        "reparameterize": [
            '''
def _std(logvar):
    return torch.exp(0.5 * logvar)


def reparameterize(mu, logvar, generator=None):
    """One sample z ~ N(mu, diag(exp(logvar))), differentiable in mu and logvar."""
    noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
    return mu + _std(logvar) * noise
''',
            '''
def reparameterize(mu, logvar, generator=None):
    """One sample z ~ N(mu, diag(exp(logvar))), differentiable in mu and logvar."""
    std = logvar.mul(0.5).exp()
    eps = torch.randn(mu.size(), generator=generator, dtype=mu.dtype)
    return eps.mul(std).add(mu)
''',
            '''
def reparameterize(mu, logvar, generator=None):
    """One sample z ~ N(mu, diag(exp(logvar))), differentiable in mu and logvar."""
    return mu + torch.randn(mu.shape, generator=generator, dtype=mu.dtype) * (logvar / 2).exp()
''',
        ],
        "kl_monte_carlo": [
            '''
def _log_normal(x, mean, logvar):
    return -0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    """Monte Carlo estimate of KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, shape (N,)."""
    draws = [reparameterize(mu, logvar, generator=generator) for _ in range(n_samples)]
    z = torch.stack(draws)
    zeros = torch.zeros_like(z)
    log_ratio = _log_normal(z, mu, logvar) - _log_normal(z, zeros, zeros)
    return log_ratio.sum(dim=2).mean(dim=0)
''',
            '''
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    """Monte Carlo estimate of KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, shape (N,)."""
    std = torch.exp(0.5 * logvar)
    total = torch.zeros(mu.shape[0], dtype=mu.dtype)
    for _ in range(n_samples):
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)
        z = mu + std * eps
        # log q - log p; the 2 pi terms cancel
        total += (-0.5 * eps ** 2 - 0.5 * logvar + 0.5 * z ** 2).sum(dim=1)
    return total / n_samples
''',
            '''
def kl_monte_carlo(mu, logvar, n_samples, generator=None):
    """Monte Carlo estimate of KL(N(mu, diag(exp(logvar))) || N(0, I)) per row, shape (N,)."""
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    z = torch.stack([reparameterize(mu, logvar, generator) for _ in range(n_samples)])
    return (q.log_prob(z) - p.log_prob(z)).sum(-1).mean(0)
''',
        ],
        "vae_loss": [
            '''
def _per_image_sum(values):
    return values.view(values.shape[0], -1).sum(dim=1)


def vae_loss(x, logits, mu, logvar, beta=1.0):
    """Negative ELBO of a Bernoulli VAE: (total, reconstruction, kl), batch means of per-image sums."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    rec = _per_image_sum(bce).mean()
    kl_term = kl_standard_normal(mu, logvar).mean()
    return rec + beta * kl_term, rec, kl_term
''',
            '''
def vae_loss(x, logits, mu, logvar, beta=1.0):
    """Negative ELBO of a Bernoulli VAE: (total, reconstruction, kl), batch means of per-image sums."""
    batch = x.size(0)
    log_sig = torch.nn.functional.logsigmoid
    rec = -(x * log_sig(logits) + (1 - x) * log_sig(-logits)).sum() / batch
    kl = (0.5 * (mu ** 2 + torch.exp(logvar) - 1 - logvar)).sum() / batch
    return rec + beta * kl, rec, kl
''',
            '''
def vae_loss(x, logits, mu, logvar, beta=1.0):
    """Negative ELBO of a Bernoulli VAE: (total, reconstruction, kl), batch means of per-image sums."""
    per_image = [F.binary_cross_entropy_with_logits(l, t, reduction="sum") for l, t in zip(logits, x)]
    recon = torch.stack(per_image).mean()
    kl = kl_standard_normal(mu, logvar).mean()
    loss = recon + beta * kl
    return loss, recon, kl
''',
        ],
    },
}


# --- the catalogues' correct alternatives, read as text ------------------------------------------


def is_correct_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    return isinstance(target, ast.Attribute) and target.attr == "correct"


def catalogue_alternatives(path: Path) -> tuple[str, dict[str, list[str]]]:
    """(notebook, {graded name: [source of each correct alternative]}) of one catalogue file."""
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text)
    notebook = next(
        node.value.args[0].value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and node.value.args
    )
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and any(
            map(is_correct_decorator, node.decorator_list)
        ):
            source = textwrap.dedent("\n".join(lines[node.lineno - 1 : node.end_lineno]))
            found.setdefault(node.name, []).append(source)
    return notebook, found


def answer_pools() -> dict[str, dict[str, list[str]]]:
    """notebook -> exercise -> independent answers; the first of each is the copied student's."""
    pools = {}
    for path in sorted(CATALOGUES.glob("ps*.py")):
        notebook, found = catalogue_alternatives(path)
        extra = EXTRA.get(notebook, {})
        pools[notebook] = {
            name: [s.strip("\n") for s in extra.get(name, [])[:1] + answers + extra.get(name, [])[1:]]
            for name, answers in found.items()
        }
    return pools


# --- planted copies ------------------------------------------------------------------------------

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def first_line(node: ast.stmt) -> int:
    return min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])


def reordered_lines(lines: list[str], body: list[ast.stmt]) -> list[str]:
    """The statements of ``body`` with its definitions in reverse order (methods of classes too)."""
    definitions = iter(reversed([n for n in body if isinstance(n, DEFINITIONS)]))
    out: list[str] = []
    for node in body:
        node = next(definitions) if isinstance(node, DEFINITIONS) else node
        if isinstance(node, ast.ClassDef):
            out += lines[first_line(node) - 1 : first_line(node.body[0]) - 1]
            out += reordered_lines(lines, node.body)
        else:
            out += lines[first_line(node) - 1 : node.end_lineno] + [""]
    return out


def reorder_definitions(source: str) -> str:
    return "\n".join(reordered_lines(source.splitlines(), ast.parse(source).body)).rstrip() + "\n"


def bound_names(tree: ast.Module, keep: set[str]) -> tuple[set[str], set[str]]:
    """(names the student bound, attributes they set on self); methods and ``keep`` excluded."""
    methods = {
        n.name
        for c in ast.walk(tree)
        if isinstance(c, ast.ClassDef)
        for n in c.body
        if isinstance(n, DEFINITIONS)
    }
    names, attributes = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, DEFINITIONS):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            if isinstance(node.value, ast.Name) and node.value.id == "self":
                attributes.add(node.attr)
    return names - keep - methods - {"self", "cls"}, attributes


def rename_variables(source: str, keep: set[str]) -> str:
    """Every name the student chose renamed (not ``keep``, methods, keyword arguments, imports)."""
    tree = ast.parse(source)
    names, attributes = bound_names(tree, keep)
    keywords = {(k.lineno, k.col_offset) for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg}
    lines = source.splitlines(keepends=True)
    previous = None
    edits = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        after_dot = previous is not None and previous.string == "."
        wanted = attributes if after_dot else names
        if tok.type == tokenize.NAME and tok.string in wanted and tok.start not in keywords:
            edits.append((tok.start, tok.end, f"renamed_{tok.string.strip('_')}_{len(edits) % 7}"))
        previous = tok
    mapping: dict[str, str] = {}
    for (row, col), (_, end), new in reversed(edits):
        old = lines[row - 1][col:end]
        new = mapping.setdefault(old, new)
        lines[row - 1] = lines[row - 1][:col] + new + lines[row - 1][end:]
    return "".join(lines)


def add_comments(source: str) -> str:
    """A comment above every block and after every return."""
    out = ["# my own work, written from the lecture notes"]
    for line in source.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if line.rstrip().endswith(":"):
            out.append(f"{indent}# the next block handles this case")
        out.append(line + ("  # the result" if line.strip().startswith("return") else ""))
    return "\n".join(out)


def change_whitespace(source: str) -> str:
    """Two-space indents, blank lines between statements, spaces around brackets and commas."""
    out = []
    for line in source.splitlines():
        stripped = line.lstrip(" ")
        indent = " " * ((len(line) - len(stripped)) // 2)
        stripped = re.sub(r"\s*,\s*", " , ", stripped).replace("(", "( ").replace(")", " )")
        out += [indent + stripped + "   ", ""]
    return "\n".join(out)


TRANSFORMS = {
    "rename": lambda source, keep: rename_variables(source, keep),
    "reorder": lambda source, keep: reorder_definitions(source),
    "comments": lambda source, keep: add_comments(source),
    "whitespace": lambda source, keep: change_whitespace(source),
    "combined": lambda source, keep: change_whitespace(
        add_comments(reorder_definitions(rename_variables(source, keep)))
    ),
}
COPIES = [f"copy-{how}" for how in TRANSFORMS]


# --- the class -----------------------------------------------------------------------------------


def class_answers(pools: dict) -> dict[str, dict[str, dict[str, str]]]:
    """student -> "assignment/notebook" -> {grade_id: answer}."""
    students: dict[str, dict] = {s: {} for s in INDEPENDENT + COPIES}
    for notebook, pool in pools.items():
        for i, student in enumerate(INDEPENDENT):
            students[student][notebook] = {
                name: answers[i] for name, answers in pool.items() if i < len(answers)
            }
        original = students[ORIGINAL][notebook]
        for how, transform in TRANSFORMS.items():
            students[f"copy-{how}"][notebook] = {
                name: transform(code, {name}) for name, code in original.items()
            }
    return students


def build_class(root: Path, students: dict) -> None:
    for student, answers in students.items():
        course.build_submission_for_all(root, student, answers)
    course.build_submission_for_all(root, "blank-1", {})
    course.build_submission_for_all(root, "blank-2", {})
    for student in ("sol-1", "sol-2"):
        course.build_submission(root, student, {"ps1/conv_arithmetic": course.SOLUTION}, "ps1")


def course_copy(target: Path) -> Path:
    """A course copy with the committed release (``test_release.py`` proves it is what nbgrader
    generates; regenerating it here would add 40 s and test nothing new)."""
    root = copy_course(target)
    shutil.copytree(REPO / "release", root / "release")
    return root


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A course copy with the planted class in ``submitted/``; returns (root, the students' answers)."""
    root = course_copy(tmp_path_factory.mktemp("similarity"))
    students = class_answers(answer_pools())
    build_class(root, students)
    return root, students


def compare_all(root: Path, settings: similarity.Settings) -> dict[str, list[similarity.Pair]]:
    """notebook -> every compared pair."""
    results = {}
    for assignment, notebook in similarity.notebooks_of(root):
        nb_class = similarity.read_notebook_class(root, assignment, notebook, settings)
        results[f"{assignment}/{notebook}"] = similarity.compare(nb_class, settings)
    return results


def family(student: str) -> str:
    return ORIGINAL if student.startswith("copy-") else student


def described(pairs) -> str:
    return ", ".join(
        f"{nb}: {p.student_a}~{p.student_b} {p.score:.2f} ({p.matched_tokens} tokens)" for nb, p in pairs
    )


# --- the tests -----------------------------------------------------------------------------------


def definition_order(code: str) -> list[str]:
    return [node.name for node in ast.walk(ast.parse(code)) if isinstance(node, DEFINITIONS)]


def test_planted_copies_change_the_code(planted):
    """Each transformation changes every copied answer; reordering, every notebook where a cell
    holds several definitions (a function beside its helper, the methods of a class)."""
    _, students = planted
    original = students[ORIGINAL]
    for how in TRANSFORMS:
        for notebook, answers in students[f"copy-{how}"].items():
            unchanged = [
                name for name, code in answers.items() if code.strip() == original[notebook][name].strip()
            ]
            assert how == "reorder" or not unchanged, (how, notebook, unchanged)
    reordered = {
        notebook
        for notebook, answers in students["copy-reorder"].items()
        if any(
            definition_order(code) != definition_order(original[notebook][name])
            for name, code in answers.items()
        )
    }
    assert reordered == {
        "ps1/conv_arithmetic",
        "ps1/transposed_convolutions",
        "ps2/conv_autoencoders",
        "ps3/vae_balance",
        "ps3/vae_models",
        "ps3/vae_theory",
    }


def test_copies_flagged_independent_answers_not(planted):
    """Every planted pair is flagged in every notebook; no pair of independent students is."""
    root, _ = planted
    settings = similarity.Settings()
    results = compare_all(root, settings)
    copies, independent = [], []
    for notebook, pairs in results.items():
        for pair in pairs:
            if {pair.student_a, pair.student_b} <= set(INDEPENDENT + COPIES):
                same = family(pair.student_a) == family(pair.student_b)
                (copies if same else independent).append((notebook, pair))
    missed = [(nb, p) for nb, p in copies if not p.flagged(settings)]
    false_alarms = [(nb, p) for nb, p in independent if p.flagged(settings)]
    lowest_copy = min(copies, key=lambda c: c[1].score)
    highest_independent = max(independent, key=lambda c: c[1].score)
    margins = (
        f"lowest copy {described([lowest_copy])}; highest independent {described([highest_independent])}"
    )
    assert len(copies) == 15 * len(results), "every notebook has 6 students of one family: 15 pairs"
    assert not missed, f"planted copies not flagged: {described(missed)}; {margins}"
    assert not false_alarms, f"independent answers flagged: {described(false_alarms)}; {margins}"


@pytest.mark.parametrize("ignore_solution", [False, True])
def test_stubs_give_no_pair_and_a_published_solution_is_ignored(planted, ignore_solution):
    """Blank submissions (the release's stubs) are not compared at all. Two students who hand in
    the instructor's solution are flagged, unless it was published (``ignore_solution``); copies of
    other code are flagged all the same."""
    root, _ = planted
    settings = similarity.Settings(ignore_solution=ignore_solution)
    nb_class = similarity.read_notebook_class(root, "ps1", "conv_arithmetic", settings)
    assert not any(a.counted for s in ("blank-1", "blank-2") for a in nb_class.answers[s].values())
    pairs = {(p.student_a, p.student_b): p for p in similarity.compare(nb_class, settings)}
    assert not [pair for pair in pairs if {"blank-1", "blank-2"} & set(pair)]
    solution = pairs.get(("sol-1", "sol-2"))
    if ignore_solution:
        assert solution is None or not solution.flagged(settings), solution.score
    else:
        assert solution.flagged(settings) and solution.score == 1.0
    assert pairs[(COPIES[-1], ORIGINAL)].flagged(settings)


def test_normalisation():
    """Renaming, comments, docstrings and whitespace change no token; a library call does."""
    modules = {"torch"}

    def symbols(code: str) -> list[str]:
        return [t.symbol for t in similarity.tokenise(textwrap.dedent(code), modules)]

    plain = symbols(
        """
        def f(mu, logvar):
            std = torch.exp(0.5 * logvar)
            return mu + std * torch.randn_like(std, dtype=mu.dtype)
        """
    )
    disguised = symbols(
        '''
        def g(m,  lv):  # my version
            """Sample."""
            s = torch.exp(0.5*lv)   # scale

            return m + s*torch.randn_like(s, dtype=m.dtype)
        '''
    )
    assert plain == disguised
    assert symbols("std = torch.sigmoid(0.5 * logvar)") != plain[8:18]
    assert symbols("std = torch.exp(0.5 * logvar)") == plain[8:18]
    assert {"torch", "exp", "randn_like", "dtype", "N"} <= set(plain)
    assert symbols("self.encoder = nn.Linear(3, 4)")[:4] == ["self", ".", "N", "="]
    assert symbols("def broken(:\n  return ((( 'x") == ["def", "N", "(", ":", "return", "(", "(", "(", "S"]


SCRIPT = '</pre><script>alert("copied")</script>'


@pytest.fixture(scope="module")
def small_class(tmp_path_factory):
    """alice; ``bob<i>``, who copied her with renamed variables; carol, independent; dave, whose
    notebook is not JSON. Alice's answers carry HTML that must come out as text."""
    root = course_copy(tmp_path_factory.mktemp("similarity-report"))
    pool = answer_pools()["ps1/conv_arithmetic"]
    # dense_param_count: the answer built on reduce(operator.mul, ...), whose copy the report marks
    chosen = {
        name: next((a for a in answers if "reduce(operator.mul" in a), answers[4])
        for name, answers in pool.items()
    }
    alice = {name: f"# {SCRIPT}\n{answer}\nNOTE = '{SCRIPT}'  # {SCRIPT}" for name, answer in chosen.items()}
    bob = {name: rename_variables(code, {name}) for name, code in alice.items()}
    carol = {name: answers[3] for name, answers in pool.items()}
    for student, answers in (("alice", alice), ("bob<i>", bob), ("carol", carol), ("dave", carol)):
        course.build_submission(root, student, {"ps1/conv_arithmetic": answers}, "ps1")
    (root / "submitted" / "dave" / "ps1" / "conv_arithmetic.ipynb").write_text("{not json")
    return root, alice


def run_command(root: Path, *argv: str) -> tuple[int, Path]:
    parser = argparse.ArgumentParser()
    similarity.add_arguments(parser)
    args = parser.parse_args(list(argv))
    return similarity.run(root, args), args.out or root / "reports" / "similarity"


def read_pairs(path: Path) -> dict[tuple[str, str], dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return {(row["notebook"], row["student_a"], row["student_b"]): row for row in csv.DictReader(f)}


def test_report_shows_the_pair_side_by_side_as_escaped_text(small_class, tmp_path):
    root, alice = small_class
    status, out = run_command(root, "--assignment", "ps1", "--out", str(tmp_path / "out"))
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "index.html",
        "pairs.csv",
        "ps1__conv_arithmetic.html",
        "ps1__deconvnet.html",
        "ps1__transposed_convolutions.html",
    ]
    pairs = read_pairs(out / "pairs.csv")
    flagged = [key for key, row in pairs.items() if row["flagged"] == "True"]
    assert flagged == [("conv_arithmetic", "alice", "bob<i>")], flagged
    assert not [key for key in pairs if "dave" in key]

    page = (out / "ps1__conv_arithmetic.html").read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;" in page and "bob&lt;i&gt;" in page
    assert "<li>dave: NotJSONError: Notebook does not appear to be JSON" in page
    sides = re.findall(r"<pre>(.*?)</pre>", page, flags=re.S)
    shown = [html.unescape(re.sub("</?mark>", "", side)) for side in sides]
    assert set(alice.values()) <= set(shown), "each answer appears whole, as the student wrote it"
    marked = [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", page, flags=re.S)]
    assert any("reduce(operator.mul" in m for m in marked), "the common code is marked"


def test_threshold_option(small_class, tmp_path):
    root = small_class[0]
    status, out = run_command(root, "--assignment", "ps1", "--threshold", "1.01", "--out", str(tmp_path))
    assert status == 0
    assert all(row["flagged"] == "False" for row in read_pairs(out / "pairs.csv").values())
    assert run_command(root, "--assignment", "ps9")[0] == 2


def test_a_signature_shorter_than_a_fingerprint_is_not_counted(planted):
    """The stub's signature is given code even where it is shorter than a fingerprint (the release's
    fingerprints alone would not cover it): only the body counts."""
    root, _ = planted
    settings = similarity.Settings()
    given = similarity.given_material(root, "ps3", "vae_theory", settings)
    body = "return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)"
    answer = similarity.Answer.of(
        "kl_standard_normal", f"def kl_standard_normal(mu, logvar):\n    {body}", given, settings.kgram
    )
    similarity.drop_common_idiom(
        similarity.NotebookClass("ps3", "vae_theory", {"x": {"e": answer}}), settings
    )
    assert len(similarity.tokenise("def kl_standard_normal(mu, logvar):", given.modules)) < settings.kgram
    assert answer.counted == len(similarity.tokenise(body, given.modules))
