"""Run every hidden test over many seeds and report each failure.

Hidden tests reseed themselves, so for seed k every ``manual_seed(s)`` in a test cell becomes
``manual_seed(s + 1000 k)``, the student process is seeded with k more than grading would seed
it, and the judge's global RNGs are seeded with k. A statistical check with a 6-standard-error
tolerance should then fail a correct answer about once in 5e8 runs; a flaky one shows up here.
Each run is judged across a process boundary as in ``tests/validity_harness.py``.

    .venv/bin/python tools/flaky_hidden_tests.py                   # references, 200 seeds
    .venv/bin/python tools/flaky_hidden_tests.py --correct         # + alternative correct answers
    .venv/bin/python tools/flaky_hidden_tests.py --wrong -n 50     # mistakes must fail every seed
    .venv/bin/python tools/flaky_hidden_tests.py --notebook ps3/vae_theory --only "Python loop"

Exit status 1 when anything is flaky.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from validity_harness import load_catalogues  # noqa: E402


def candidates(cat, args):
    """(label, graded name or None, answers, must fail) for each candidate to run."""
    yield "reference", None, {}, False
    if args.correct:
        for v in cat.correct_variants:
            yield f"correct {v.name}: {v.label}", v.name, {v.name: v.source}, False
    if args.wrong:
        for v in cat.wrong_variants:
            yield f"wrong {v.name}: {v.label}", v.name, {v.name: v.source}, True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--seeds", type=int, default=200)
    parser.add_argument("--notebook", action="append", help="only these notebooks (e.g. ps1/conv_arithmetic)")
    parser.add_argument("--correct", action="store_true", help="also run the alternative correct answers")
    parser.add_argument("--wrong", action="store_true", help="also check that every mistake fails every seed")
    parser.add_argument("--only", help="only candidates whose label contains this text")
    args = parser.parse_args()
    torch.set_num_threads(1)
    flaky: Counter = Counter()
    runs, start = 0, time.perf_counter()
    for cat in load_catalogues():
        if args.notebook and cat.notebook not in args.notebook:
            continue
        for label, name, answers, must_fail in candidates(cat, args):
            if args.only and args.only not in label:
                continue
            test_ids = (
                [v.must_fail for v in cat.wrong_variants if v.source in answers.values()]
                if must_fail
                else (cat.tests[name] if name else cat.test_ids())
            )
            for test_id in test_ids:
                for seed in range(args.seeds):
                    random.seed(seed)
                    np.random.seed(seed)
                    torch.manual_seed(seed)
                    with contextlib.redirect_stdout(io.StringIO()):  # test cells print answers
                        outcome = cat.run(test_id, answers, seed_offset=1000 * seed)
                    runs += 1
                    if outcome.passed == must_fail:
                        flaky[(cat.notebook, label, test_id)] += 1
                        what = "passed" if must_fail else f"failed: {outcome.error or outcome.stderr}"
                        print(f"FLAKY {cat.notebook} [{label}] {test_id} seed={seed} {what}")
    print(
        f"{runs} runs ({args.seeds} seeds per test and candidate) in {time.perf_counter() - start:.0f} s: "
        f"{sum(flaky.values())} flaky"
    )
    for (notebook, label, test_id), count in sorted(flaky.items()):
        print(f"  {notebook} [{label}] {test_id}: {count}/{args.seeds}")
    return 1 if flaky else 0


if __name__ == "__main__":
    sys.exit(main())
