"""Tools a course team needs after the autograder: one module each.

- ``similarity``: pairs of submissions whose answers are suspiciously alike;
- ``lms``: grades in the formats Canvas and Moodle import, and the late-submission policy;
- ``items``: an item analysis of each assignment (pass rates, frequent failures, distributions);
- ``marking``: grading sheets that put the mark scheme beside every answer, and their import.

They read the course folder (``source/``, ``release/``, ``autograded/``) and the gradebook; none of
them runs student code.
"""
