"""Grading on top of nbgrader, one stage per module.

- ``canonicalise``: each submission rebuilt from the release with the student's answers put back;
- ``pipeline``: the class, graded one job (student x assignment) per worker process, in parallel;
- ``cluster``: the same jobs on a Dask distributed cluster of machines;
- ``worker``: one job in one process (nbgrader's autograde and feedback);
- ``execute``: nbgrader's execution, where answer cells run in the student's kernel and every
  graded test cell runs in the judge;
- ``judge``: the process that runs instructor code only and computes each test cell's verdict;
- ``proxy``: the judge's view of the student's names (values, or opaque handles);
- ``agent``: the student-side end of that channel, inside the kernel;
- ``wire``: the format that crosses between them (JSON and safetensors: nothing executable);
- ``checks``: helpers for test cells that work in the judge and in a student's own kernel;
- ``probes``: public helpers that hidden tests build inside the student's process;
- ``sandbox`` and ``kernel_server``: the bubblewrap sandbox and the fork server of kernels;
- ``feedback``: what the graded notebook and the feedback may show;
- ``report``: the per-submission report;
- ``commands``: the one wrapper around the nbgrader command line.

Nothing is imported here: the kernel imports ``agent`` and test cells import ``checks``, and
neither should pull in nbgrader.
"""
