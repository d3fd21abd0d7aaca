"""Command line: ``python -m convae <command>`` (see README)."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from convae import course

# The students' bundle (convae/bundle) and the course team's tools after the deadline (convae/review):
# command -> (module, its options' function, its run function, help).
TOOL_COMMANDS = {
    "student-bundle": ("convae.bundle", "add_arguments", "run", "what students get: dist/ with zips"),
    "similarity": ("convae.review.similarity", "add_arguments", "run", "pairs of submissions alike"),
    "export-lms": ("convae.review.lms", "add_arguments", "run", "grades as a Canvas or Moodle import CSV"),
    "items": ("convae.review.items", "add_arguments", "run", "item analysis: pass rates, frequent failures"),
    "marking-sheets": ("convae.review.marking", "add_arguments", "run", "a sheet per written question"),
    "import-marks": ("convae.review.marking", "add_import_arguments", "run_import", "import marking CSVs"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="convae", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="course folder (default: .)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("release", help="regenerate release/ from source/")
    sub.add_parser("examples", help="write the example class into submitted/")
    sub.add_parser("main", help="release, grade the example class, export, print the table")
    sub.add_parser("table", help="print the per-notebook grade table from the gradebook")
    grade = sub.add_parser("grade", help="grade submitted/ in parallel, sandboxed; exit 1 on failures")
    grade.add_argument("--student", action="append", help="only this student (repeatable)")
    grade.add_argument("--assignment", action="append", help="only this assignment (repeatable)")
    grade.add_argument("--jobs", type=int, default=None, help="parallel workers (default: one per core)")
    grade.add_argument(
        "--sandbox",
        choices=["on", "off"],
        default="on",
        help="on (default): refuse to grade where bubblewrap cannot sandbox; off: student code runs as you",
    )
    grade.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    add_limit_options(grade)
    grade.add_argument("--db", default=None, help="gradebook SQLAlchemy URL (default: sqlite gradebook.db)")
    grade.add_argument(
        "--cluster",
        metavar="ADDRESS",
        default=None,
        help="grade on the Dask cluster whose scheduler is ADDRESS",
    )
    argv = sys.argv[1:] if argv is None else argv
    # Only the chosen tool is imported (some import nbgrader, seconds of start-up).
    chosen = next((word for word in argv if word in TOOL_COMMANDS), None)
    tools = {}
    for command, (module_name, adder, runner, help_text) in TOOL_COMMANDS.items():
        command_parser = sub.add_parser(command, help=help_text)
        if command == chosen:
            module = importlib.import_module(module_name)
            getattr(module, adder)(command_parser)
            tools[command] = getattr(module, runner)
    args = parser.parse_args(argv)
    root = args.root.resolve()

    if args.command == "release":
        course.generate_release(root)
    elif args.command == "examples":
        print("\n".join(course.build_example_class(root)))
    elif args.command == "main":
        grades = course.grade_example_class(root)
        print(course.format_grade_table(grades))
        print(f"\ngrades: {root / 'autograded' / 'grades.csv'}, feedback: {root / 'feedback'}/")
    elif args.command == "grade":
        return run_grade(root, args)
    elif args.command in tools:
        return tools[args.command](root, args)
    elif args.command == "table":
        print(course.format_grade_table(course.notebook_grades(root)))
    return 0


def add_limit_options(grade) -> None:
    """Limits on each job as a whole (0: none); see README, *For graders*."""
    from convae.grading import execute, pipeline

    mib = pipeline.MIB
    limits = grade.add_argument_group("limits per job (0: none)")
    limits.add_argument(
        "--memory",
        type=int,
        default=pipeline.DEFAULT_JOB_MEMORY // mib,
        metavar="MIB",
        help="memory of all the job's processes together (default: %(default)s)",
    )
    limits.add_argument(
        "--pids",
        type=int,
        default=pipeline.DEFAULT_JOB_PIDS,
        metavar="N",
        help="processes and threads of the job (default: %(default)s)",
    )
    limits.add_argument(
        "--cpus", type=float, default=None, metavar="N", help="cores the job may use (default: cores / jobs)"
    )
    limits.add_argument(
        "--tmp-size",
        type=int,
        default=pipeline.DEFAULT_TMP_SIZE // mib,
        metavar="MIB",
        help="the sandbox's /tmp, and its /dev/shm (default: %(default)s)",
    )
    limits.add_argument(
        "--scratch-size",
        type=int,
        default=pipeline.DEFAULT_SCRATCH_SIZE // mib,
        metavar="MIB",
        help="new files in the working copy, beyond the submission (default: %(default)s)",
    )
    limits.add_argument(
        "--notebook-budget",
        type=int,
        default=execute.DEFAULT_NOTEBOOK_SECONDS,
        metavar="SECONDS",
        help="time budget of one notebook; its cells left when it is spent fail (default: %(default)s)",
    )


def grade_settings(root: Path, args, enabled: bool):
    from convae.grading import pipeline

    mib = pipeline.MIB
    return pipeline.Settings(
        root,
        sandbox=enabled,
        timeout=args.timeout,
        db_url=args.db,
        job_memory=args.memory * mib,
        job_pids=args.pids,
        job_cpus=args.cpus,
        tmp_size=args.tmp_size * mib,
        scratch_size=args.scratch_size * mib,
        notebook_seconds=args.notebook_budget,
    )


def run_grade(root: Path, args) -> int:
    from convae.grading import pipeline

    if args.cluster:  # student code runs on the workers: each one that cannot sandbox refuses the job
        enabled = args.sandbox == "on"
        settings = grade_settings(root, args, enabled)
        print(pipeline.cluster_note(settings))
    else:
        enabled, note = pipeline.sandbox_setting(args.sandbox)
        settings, problem = pipeline.machine_settings(grade_settings(root, args, enabled), args.jobs)
        print(pipeline.grading_note(settings, note, problem))
    if args.cluster:
        from convae.grading import cluster

        try:
            results = cluster.grade_on_cluster(settings, args.cluster, args.student, args.assignment)
        except cluster.ClusterUnreachable as error:
            print(f"error: {error}; nothing was graded", file=sys.stderr)
            return 2
    else:
        results = pipeline.grade_class(
            settings, jobs=args.jobs, students=args.student, assignments=args.assignment
        )
    print(course.format_grade_table(course.notebook_grades(root, args.db)))
    for r in results:
        if r.flags:
            print(f"{r.status.upper():8} {r.student}/{r.assignment}: " + "; ".join(r.flags))
    failed = sum(not r.ok for r in results)
    print(f"{len(results)} submissions graded, {failed} failed; report: autograded/grading_report.csv")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
