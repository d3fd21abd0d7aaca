"""What students see in their feedback: maths rendered offline, no grader's paths, in a real browser."""

import re

import pytest
from browser import Chromium

from convae import notebooks

THEORY = ("example-complete", "ps3", "vae_theory")


def feedback_page(root, student, assignment, notebook):
    return root / "feedback" / student / assignment / f"{notebook}.html"


def test_feedback_maths_is_mathml_and_nothing_is_fetched(graded_course):
    text = feedback_page(graded_course, *THEORY).read_text()
    assert text.count("<math") > 50
    assert not re.search(r"<script[^>]*\bsrc=", text), "the feedback page loads a script"
    assert "MathJax.Hub" not in text and "cdnjs" not in text
    # LaTeX of the notebook's prose and of the student's written answers, now MathML
    source = notebooks.read(graded_course / "source" / "ps3" / "vae_theory.ipynb")
    assert any("q_\\psi(z \\mid x)" in cell.source for cell in source.cells)
    assert "q_\\psi(z \\mid x)" not in text and "\\mathbb{E}" not in text


def test_feedback_names_the_students_files_not_the_graders(graded_course):
    pages = sorted((graded_course / "feedback").glob("*/*/*.html"))
    assert pages
    for page in pages:
        text = page.read_text()
        assert str(graded_course) not in text and ".grading/" not in text, page
    models = feedback_page(graded_course, "example-complete", "ps3", "vae_models").read_text()
    assert "from your vae_theory.ipynb" in models


@pytest.mark.system("chromium")
def test_feedback_maths_renders_in_an_offline_browser(graded_course, tmp_path):
    browser = Chromium(tmp_path, offline=True)
    try:
        browser.open(feedback_page(graded_course, *THEORY))
        shown = "Array.from(document.querySelectorAll('math')).filter(m => m.getBoundingClientRect().width)"
        rendered = browser.evaluate(f"{shown}.length")
        fetched = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
        shot = browser.screenshot(tmp_path / "vae_theory_feedback.png")
    finally:
        browser.close()
    print(f"\nscreenshot: {shot}")
    assert rendered > 50
    assert fetched == []
