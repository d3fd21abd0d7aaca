"""nbgrader configuration for the course "From convolutions to VAEs".

Paths are relative to this file's folder (the course root). The grading pipeline in
``convae.course`` passes ``--CourseDirectory.root`` explicitly, so a copy of the course in a
temporary folder grades exactly like this one.
"""

from nbgrader.converters import GenerateAssignment

from convae.grading.feedback import TEMPLATE_BASEDIRS

c = get_config()  # noqa: F821 -- injected by traitlets when nbgrader loads this file

c.CourseDirectory.course_id = "conv-to-vae"
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///gradebook.db"

c.CourseDirectory.db_assignments = [
    dict(name="ps1"),
    dict(name="ps2"),
    dict(name="ps3"),
]

# Where students' notebooks install the course wheel when `convae` is missing (Colab, a Jupyter
# without it): the first code cell of every notebook. Written into the release when it is generated
# (convae.install_cell), so set it once here and regenerate the release. Publish the wheel of
# `bash course.sh student-bundle` (dist/) at this address; the .invalid default never answers.
c.CoursePackage.url = "https://conv-to-vae.invalid/convae-0.1.0-py3-none-any.whl"
c.GenerateAssignment.preprocessors = [
    "convae.install_cell.CoursePackage",
    *GenerateAssignment.class_traits()["preprocessors"].default(),
]

# What students see in place of a removed solution. The code stub raises, so an unanswered
# question fails its tests instead of passing by accident.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Per-cell limit while grading. The longest graded cell (a short training run in grading
# mode) takes well under a minute on a 2-core laptop; 120 s leaves room for slow machines and
# stops an infinite loop from holding the class back.
c.ExecutePreprocessor.timeout = 120
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# A notebook that grows huge outputs (plots in a loop, a printed tensor) must not bloat the
# autograded copy or the feedback.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50


# Hardened grading (convae.grading): test cells are judged in a separate process (the judge) and
# their outputs written from its verdict; a dead kernel costs only its cell; outputs are capped in
# size; feedback shows each failed check's message without the hidden test or traceback.
c.Autograde.autograde_preprocessors = [
    "convae.grading.execute.ResilientExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "convae.grading.feedback.TruncateLargeOutputs",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "convae.grading.feedback.RedactHiddenTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# Feedback pages render their maths offline (MathML), load no MathJax and show students' raw HTML
# as text (convae.grading.feedback).
c.HTMLExporter.extra_template_basedirs = TEMPLATE_BASEDIRS
c.HTMLExporter.filters = {"markdown2html": "convae.grading.feedback.markdown_html"}

# Late submissions (convae/review/lms.py; README "Grades for Canvas and Moodle"): applied at
# autograde from each submission's timestamp.txt and the assignment's due date (nbgrader db
# assignment add ps1 --duedate="2025-03-01 17:00:00 UTC"), and recomputed from the final score
# at every LMS export. "none", "zero", or "percent_per_day": that percent of the score per day
# or part of a day late, capped at the score.
c.AssignLatePenalties.plugin_class = "convae.review.lms.LatePenalty"
c.LatePenalty.penalty_method = "none"
c.LatePenalty.percent_per_day = 10.0
