"""The per-submission report: what was graded, what was repaired, what failed and why."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class JobResult:
    student: str
    assignment: str
    ok: bool = True
    flags: list[str] = field(default_factory=list)
    seconds: float = 0.0
    usage: str = ""  # what the job's cgroups measured, where it had them

    @property
    def status(self) -> str:
        return "failed" if not self.ok else "repaired" if self.flags else "ok"


COLUMNS = ["student", "assignment", "status", "seconds", "flags", "usage"]


def write_report(results: list[JobResult], path: Path) -> None:
    """Write this run's rows; rows of submissions this run did not grade are kept."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {}
    if path.exists():
        with open(path, newline="") as f:
            rows = {(row["student"], row["assignment"]): row for row in csv.DictReader(f)}
    for r in results:
        rows[(r.student, r.assignment)] = dict(
            zip(
                COLUMNS,
                [r.student, r.assignment, r.status, f"{r.seconds:.1f}", " | ".join(r.flags), r.usage],
                strict=True,
            )
        )
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        for key in sorted(rows):
            writer.writerow({column: rows[key].get(column, "") for column in COLUMNS})


def last_error_line(stderr: str) -> str:
    """The most telling line of nbgrader's log: the last exception raised, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    exceptions = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
    return (exceptions or lines or ["no output"])[-1][:300]
