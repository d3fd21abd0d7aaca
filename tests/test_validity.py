"""The hidden tests are valid: correct answers pass, known mistakes fail, stubs fail.

Catalogues live in ``tests/validity/<assignment>_<notebook>.py``; a new notebook plugs in by
adding one such file. See ``validity_harness.py`` for how a test cell is run.
"""

import pytest
from validity_harness import load_catalogues

from convae import notebooks

CATALOGUES = load_catalogues()
MIN_ALTERNATIVES = 2
MIN_MISTAKES = 3


def cases(kind):
    return list(_cases(kind))


def _cases(kind):
    for cat in CATALOGUES:
        if kind == "reference":
            for name in cat.tests:
                yield pytest.param(cat, name, id=f"{cat.notebook}:{name}")
        else:
            variants = cat.correct_variants if kind == "correct" else cat.wrong_variants
            for v in variants:
                yield pytest.param(cat, v, id=f"{cat.notebook}:{v.name}:{v.label}")


def describe(outcome):
    return (
        f"{type(outcome.error).__name__}: {outcome.error}" if outcome.error else f"stderr: {outcome.stderr!r}"
    )


@pytest.mark.parametrize(("cat", "name"), cases("reference"))
def test_reference_passes_its_tests(cat, name):
    for test_id in cat.tests[name]:
        outcome = cat.run(test_id, {})
        assert outcome.passed, f"reference fails {test_id}: {describe(outcome)}"


@pytest.mark.parametrize(("cat", "name"), cases("reference"))
def test_reference_passes_the_visible_checks_in_a_students_kernel(cat, name):
    for test_id in cat.tests[name]:
        outcome = cat.run_visible(test_id)
        assert outcome.passed, f"reference fails the visible part of {test_id} in-kernel: {describe(outcome)}"


@pytest.mark.parametrize(("cat", "variant"), cases("correct"))
def test_alternative_correct_answer_passes(cat, variant):
    for test_id in cat.checking_tests(variant.name):
        outcome = cat.run(test_id, {variant.name: variant.source})
        assert outcome.passed, f"correct alternative fails {test_id}: {describe(outcome)}"


@pytest.mark.parametrize(("cat", "variant"), cases("wrong"))
def test_known_mistake_fails_its_test(cat, variant):
    assert variant.must_fail in cat.tests[variant.name], "the mistake names a test of another function"
    outcome = cat.run(variant.must_fail, {variant.name: variant.source})
    assert not outcome.passed, f"{variant.must_fail} does not catch: {variant.label}"
    assert isinstance(outcome.error, variant.raises), (
        f"expected {variant.raises.__name__} (a message for the student), got {describe(outcome)}"
    )


@pytest.mark.parametrize("cat", CATALOGUES, ids=lambda c: c.notebook)
def test_stubbed_release_fails_every_test(cat):
    release_cells = cat.cells(release=True)
    stubs = {answer_id: release_cells[answer_id].source for answer_id in cat.answer_ids()}
    for test_id in cat.test_ids():
        outcome = cat.run(test_id, stubs)
        assert isinstance(outcome.error, NotImplementedError), (
            f"{test_id} does not fail on the release stubs: {describe(outcome)}"
        )


@pytest.mark.parametrize("cat", CATALOGUES, ids=lambda c: c.notebook)
def test_catalogue_covers_the_notebook(cat):
    assert sorted(cat.tests) == sorted(cat.answer_ids()), "every graded name needs a catalogue entry"
    claimed = [t for ids in cat.tests.values() for t in ids]
    assert sorted(claimed) == sorted(set(cat.test_ids())), "every test cell must be claimed by a graded name"
    for name in cat.tests:
        n_correct = sum(v.name == name for v in cat.correct_variants)
        n_wrong = sum(v.name == name for v in cat.wrong_variants)
        assert n_correct >= MIN_ALTERNATIVES, f"{name}: {n_correct} alternative correct answers"
        assert n_wrong >= MIN_MISTAKES, f"{name}: {n_wrong} known mistakes"
        caught = {v.must_fail for v in cat.wrong_variants if v.name == name}
        assert caught, f"{name}: no mistake is caught by any test"


def test_every_source_notebook_has_a_catalogue():
    from validity_harness import REPO

    graded = {
        f"{path.parent.name}/{path.stem}"
        for path in (REPO / "source").glob("*/*.ipynb")
        if any(notebooks.is_answer_cell(c) for c in notebooks.read(path).cells)
    }
    assert graded <= {cat.notebook for cat in CATALOGUES}
