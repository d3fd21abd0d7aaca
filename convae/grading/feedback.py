"""What the graded notebook and the student's feedback may show.

``TruncateLargeOutputs`` caps every output (an autograde preprocessor); ``RedactHiddenTests``
removes the hidden tests and tracebacks from the feedback (a feedback preprocessor). Both are
wired in by ``nbgrader_config.py``, as is the feedback page's offline maths: ``markdown_html``
replaces nbconvert's ``markdown2html`` filter (Markdown with LaTeX as MathML, raw HTML as text),
and ``TEMPLATE_BASEDIRS`` puts an empty ``mathjax`` macro in front of nbgrader's feedback template,
so that the page loads nothing from the internet.
"""

from __future__ import annotations

from pathlib import Path

import nbgrader
from jinja2 import pass_context
from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.preprocessors.clearhiddentests import ClearHiddenTests
from traitlets import Integer

from convae import notebooks, rendering

# Ours first: its feedback/mathjax.html.j2 shadows nbconvert's; nbgrader's feedback template follows.
TEMPLATE_BASEDIRS = [
    str(Path(__file__).with_name("templates")),
    str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"),
]


@pass_context
def markdown_html(context, source: str) -> str:
    """A Markdown cell (or a grader's comment) as HTML with MathML; pasted images kept."""
    cell = context.get("cell") or {}
    return rendering.render_markdown(source, cell.get("attachments"))


class TruncateLargeOutputs(NbGraderPreprocessor):
    """Cap every output's size: a 100 MB print must not bloat the graded copy or the feedback."""

    max_text = Integer(20_000, help="characters kept of a text output").tag(config=True)
    max_data = Integer(2_000_000, help="bytes kept of a rich output (images, HTML)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if "text" in output and len(output.text) > self.max_text:
                dropped = len(output.text) - self.max_text
                output.text = (
                    output.text[: self.max_text] + f"\n... [{dropped:,} characters cut by the grader]\n"
                )
            for mime, value in list(output.get("data", {}).items()):
                if len(str(value)) > self.max_data:
                    output.data[mime] = f"[{mime} output of {len(str(value)):,} bytes removed by the grader]"
                    if mime != "text/plain":
                        output.data.pop(mime)
                        output.data["text/plain"] = f"[{mime} output removed by the grader: too large]"
        return cell, resources


class RedactHiddenTests(NbGraderPreprocessor):
    """Feedback shows which check failed and its message, not the hidden test or its traceback."""

    def preprocess(self, nb, resources):
        hidden = ClearHiddenTests(enforce_metadata=False)
        for cell in nb.cells:
            if not notebooks.is_test_cell(cell):
                continue
            hidden._remove_hidden_test_region(cell)
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return nb, resources
