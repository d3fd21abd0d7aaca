"""Similarity benchmark: seconds to compare a class of N students, per notebook and in total.

On a scratch copy of the course (source/ and the committed release/), it writes a class of
``--students`` submissions answering every exercise of every notebook, of which ``--copies`` are
planted copies of another student (renamed, reordered, commented, re-spaced: the test's combined
transformation), then runs the report (``convae.review.similarity.run``) and prints, per
notebook, the seconds to read and fingerprint the submissions, to compare every pair, and to
write the HTML page, then the whole command's wall time and whether exactly the planted pairs
were flagged.

The independent students' answers are generated code (random statements in the shape of a real
answer: assignments, calls into torch and math, arithmetic, loops and branches), not real
solutions: enough to time the comparison of realistic token counts, and a background in which
only the planted pairs should score high. Whether real independent answers stay below the
threshold is what ``tests/test_similarity.py`` measures.

Usage: .venv/bin/python tools/bench_similarity.py [--students 60] [--copies 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import csv
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

# the test's class material: its planted-copy transformations, the sizes of real answers
from test_similarity import TRANSFORMS, answer_pools  # noqa: E402

from convae import course, notebooks  # noqa: E402
from convae.review import similarity  # noqa: E402

CALLS = ["torch.exp", "torch.sum", "torch.clamp", "math.sqrt", "abs", "max", "min", "float", "len", "int"]
METHODS = ["mean", "sum", "reshape", "view", "flatten", "pow", "exp", "detach", "unsqueeze", "size"]
OPERATORS = ["+", "-", "*", "/", "//", "**", "%"]


def expression(rng: random.Random, names: list[str], depth: int) -> str:
    """A random expression over ``names``: arithmetic, calls, method calls, numbers."""
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(names) if rng.random() < 0.7 else str(rng.choice([0, 1, 2, 3, 0.5, 1e-6, 255]))
    kind = rng.random()
    if kind < 0.45:
        op = rng.choice(OPERATORS)
        return f"({expression(rng, names, depth - 1)} {op} {expression(rng, names, depth - 1)})"
    if kind < 0.75:
        args = ", ".join(expression(rng, names, depth - 1) for _ in range(rng.randint(1, 3)))
        return f"{rng.choice(CALLS)}({args})"
    return (
        f"({expression(rng, names, depth - 1)}).{rng.choice(METHODS)}({rng.choice(['', 'dim=1', '-1', '0'])})"
    )


def token_count(code: str) -> int:
    return len(similarity.tokenise(code, set()))


def generated_body(rng: random.Random, params: list[str], size: int, indent: str) -> list[str]:
    """Random statements over the parameters and the names they define, about ``size`` tokens."""
    names, out = list(params), []
    while sum(map(token_count, out)) < size:
        target = f"{rng.choice(['t', 'acc', 'out', 'tmp', 'val', 'res'])}{len(out)}"
        roll = rng.random()
        if roll < 0.12:
            out += [
                f"{indent}for i{len(out)} in range({rng.choice(names)}):",
                f"{indent}    {target} = {expression(rng, names, 2)}",
            ]
        elif roll < 0.22:
            out += [
                f"{indent}if {expression(rng, names, 1)} > {expression(rng, names, 1)}:",
                f"{indent}    {target} = {expression(rng, names, 2)}",
            ]
        else:
            out.append(f"{indent}{target} = {expression(rng, names, 3)}")
        names.append(target)
    return out + [f"{indent}return {expression(rng, names, 1)}"]


def generated_answer(rng: random.Random, stub: str, size: int) -> str:
    """The stub's first line (a ``def`` or ``class``) and a generated body of about ``size`` tokens."""
    header = stub.splitlines()[0]
    params = header.partition("(")[2].rpartition(")")[0].split(",")
    params = [p.split("=")[0].strip() for p in params if p.strip()]
    if header.startswith("class"):
        methods = []
        for method in ("forward", "undo"):
            body = generated_body(rng, ["self", "x"], size // 2, " " * 8)
            methods += [f"    def {method}(self, x):", *body]
        return "\n".join([header, *methods])
    return "\n".join([header, *generated_body(rng, params or ["x"], size, "    ")])


def real_sizes() -> dict[str, dict[str, list[int]]]:
    """notebook -> exercise -> token counts of the catalogues' correct answers (and the test's)."""
    return {
        notebook: {name: [token_count(code) for code in answers] for name, answers in pool.items()}
        for notebook, pool in answer_pools().items()
    }


def answer_stubs(root: Path) -> dict[str, dict[str, str]]:
    """notebook -> {grade_id: the release's answer cell}."""
    stubs = {}
    for assignment, notebook in similarity.notebooks_of(root):
        nb = notebooks.read(root / "release" / assignment / f"{notebook}.ipynb")
        cells = {notebooks.grade_id(c): c.source for c in nb.cells if notebooks.is_answer_cell(c)}
        stubs[f"{assignment}/{notebook}"] = cells
    return stubs


def build_class(root: Path, students: int, copies: int, seed: int) -> set[tuple[str, str]]:
    """Write the class into ``submitted/``; returns the planted pairs (sorted student ids)."""
    rng = random.Random(seed)
    stubs, sizes = answer_stubs(root), real_sizes()
    answers = {}
    for i in range(students - copies):
        answers[f"student-{i:03d}"] = {
            nb: {gid: generated_answer(rng, stub, rng.choice(sizes[nb][gid])) for gid, stub in cells.items()}
            for nb, cells in stubs.items()
        }
    planted = set()
    for i, original in enumerate(rng.sample(sorted(answers), copies)):
        copy = f"copier-{i:03d}"
        answers[copy] = {
            nb: {gid: TRANSFORMS["combined"](code, {gid}) for gid, code in cells.items()}
            for nb, cells in answers[original].items()
        }
        planted.add(tuple(sorted((original, copy))))
    for student, by_notebook in answers.items():
        course.build_submission_for_all(root, student, by_notebook)
    return planted


def timed_notebooks(root: Path, settings: similarity.Settings) -> list[tuple]:
    """Per notebook: (name, submissions, pairs, read s, compare s, page s)."""
    rows = []
    for assignment, notebook in similarity.notebooks_of(root):
        start = time.perf_counter()
        nb_class = similarity.read_notebook_class(root, assignment, notebook, settings)
        read = time.perf_counter()
        pairs = similarity.compare(nb_class, settings)
        compared = time.perf_counter()
        similarity.notebook_page(nb_class, pairs, settings)
        paged = time.perf_counter()
        name = f"{assignment}/{notebook}"
        rows.append(
            (name, len(nb_class.answers), len(pairs), read - start, compared - read, paged - compared)
        )
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"{'notebook':32} {'subm.':>5} {'pairs':>6} {'read s':>7} {'compare s':>9} {'page s':>7}")
    for name, submissions, pairs, read, compare, page in rows:
        print(f"{name:32} {submissions:5d} {pairs:6d} {read:7.2f} {compare:9.2f} {page:7.2f}")
    read, compare, page = (sum(r[i] for r in rows) for i in (3, 4, 5))
    print(f"{'total':32} {'':5} {sum(r[2] for r in rows):6d} {read:7.2f} {compare:9.2f} {page:7.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-similarity-") as scratch:
        root = Path(scratch)
        for name in ("source", "release"):
            shutil.copytree(REPO / name, root / name)
        start = time.perf_counter()
        planted = build_class(root, options.students, options.copies, options.seed)
        print(f"class of {options.students} written in {time.perf_counter() - start:.1f} s")

        settings = similarity.Settings()
        print_table(timed_notebooks(root, settings))
        command = argparse.ArgumentParser()
        similarity.add_arguments(command)
        start = time.perf_counter()
        similarity.run(root, command.parse_args(["--out", str(root / "reports")]))
        print(f"the whole command (every notebook, HTML and CSV): {time.perf_counter() - start:.2f} s")

        with open(root / "reports" / "pairs.csv", newline="") as f:
            scores = {(r["student_a"], r["student_b"], r["notebook"]): r for r in csv.DictReader(f)}
        flagged = {(a, b) for (a, b, _), r in scores.items() if r["flagged"] == "True"}
        lowest_planted = min(float(r["score"]) for (a, b, _), r in scores.items() if (a, b) in planted)
        highest_other = max(float(r["score"]) for (a, b, _), r in scores.items() if (a, b) not in planted)
        print(f"planted pairs: {len(planted)}, flagged pairs: {len(flagged)}, both: {len(flagged & planted)}")
        print(f"lowest planted score {lowest_planted:.2f}; highest other score {highest_other:.2f}")
        return 0 if flagged == planted else 1


if __name__ == "__main__":
    sys.exit(main())
