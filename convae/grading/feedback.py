"""What the graded notebook and the student's feedback may show.

``TruncateLargeOutputs`` caps every output (an autograde preprocessor); ``RedactHiddenTests``
removes the hidden tests and tracebacks from the feedback (a feedback preprocessor). Both are
wired in by ``nbgrader_config.py``.
"""

from __future__ import annotations

from nbgrader.preprocessors import NbGraderPreprocessor
from nbgrader.preprocessors.clearhiddentests import ClearHiddenTests
from traitlets import Integer

from convae import notebooks


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
