"""Limits on one grading job as a whole, enforced by cgroups: ``python -m convae.grading.limits CMD...``.

Per-process limits (``sandbox.set_limits``) do not bound a job that forks: each of 400 processes,
or of six fresh interpreters, gets its own. One job (a student's assignment) therefore gets one
group per cgroup hierarchy, around its kernel server and everything the server forks:
- ``memory``: the job's processes together, tmpfs pages included (v1 ``memory.limit_in_bytes``,
  v2 ``memory.max`` with no swap); beyond it the kernel's OOM killer ends one of them;
- ``pids``: processes and threads (``pids.max``); beyond it fork and thread creation fail;
- ``cpu``: at most N cores (v1 ``cpu.cfs_quota_us``, v2 ``cpu.max``) with an equal weight, so
  that a job's 64 spinning threads slow that job only.

The grader creates the groups and writes their limits (``JobGroup.create``), outside the sandbox,
which shows ``/sys`` read-only. The kernel server's command starts with this module (``main``),
which writes its own pid into each group named in ``CONVAE_JOB_CGROUPS`` and then execs the rest of
the command (bubblewrap), so no process of the job starts outside. A server started later by a
kernel launcher gets the same groups through the same variable. When the job is done the grader
reads what the groups measured (``Usage``), kills whatever is left in them and removes them.

Groups are created below the grader's own group in each hierarchy (``<own>/convae/<job>``), so
that whatever limits the grader itself lives under still apply; on cgroup v2, where a group that
holds processes cannot give controllers to children, next to it (``<parent>/convae/<job>``) when
that parent is ours to write (root, or a delegated unit with ``DelegateSubgroup=``).
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
GROUPS = "CONVAE_JOB_CGROUPS"  # os.pathsep-separated job groups, one per hierarchy
PARENT = "convae"
CFS_PERIOD_US = 100_000
MIB = 2**20
# A job held back by its CPU share in this many quota periods (of 0.1 s) is flagged; no honest job
# of the example class was held back in any (kernels run one torch thread per CPU they are given).
CPU_FLAG_PERIODS = 10
REMOVE_SECONDS = 10.0


@dataclass(frozen=True)
class Limits:
    """What one job may use; 0 means no limit."""

    memory: int = 0  # bytes, every process of the job together
    pids: int = 0  # processes and threads
    cpus: float = 0.0  # cores


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 1 or 2
    mount: Path
    own: str  # this process's group, relative to the mount ("" for its root)
    controllers: frozenset[str]

    def parents(self) -> list[Path]:
        """Where this process may create the ``convae`` group, best first."""
        own = self.mount / self.own if self.own else self.mount
        if self.version == 1 or not self.own:
            return [own]
        return [own, own.parent]


def hierarchies(mountinfo: str | None = None, cgroup: str | None = None) -> list[Hierarchy]:
    """The hierarchies that hold ``CONTROLLERS`` and this process's group in each."""
    mountinfo = Path("/proc/self/mountinfo").read_text() if mountinfo is None else mountinfo
    cgroup = Path("/proc/self/cgroup").read_text() if cgroup is None else cgroup
    own_v1, own_v2 = {}, None
    for line in cgroup.splitlines():
        number, names, path = line.split(":", 2)
        if number == "0" and not names:
            own_v2 = path
        for name in names.split(","):
            own_v1[name] = path
    found, seen = [], set()
    for line in mountinfo.splitlines():
        fields, _, right = line.partition(" - ")
        fields, right = fields.split(), right.split()
        if len(fields) < 5 or len(right) < 3:
            continue
        root, mount, fstype, options = fields[3], Path(unescape(fields[4])), right[0], right[2]
        if fstype == "cgroup":
            names = frozenset(options.split(",")) & frozenset(CONTROLLERS)
            own = own_v1.get(next(iter(names))) if names else None
        elif fstype == "cgroup2" and own_v2 is not None:
            names = frozenset(read(mount / "cgroup.controllers", "").split()) & frozenset(CONTROLLERS)
            own = own_v2
        else:
            continue
        relative = below(own, root) if names and own is not None else None
        if relative is not None and names not in seen:
            seen.add(names)
            found.append(Hierarchy(1 if fstype == "cgroup" else 2, mount, relative, names))
    return found


def unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in octal."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def below(path: str, root: str) -> str | None:
    """``path`` relative to a mount whose root is ``root``; None when the mount does not show it."""
    path, root = path.rstrip("/"), root.rstrip("/")
    if path == root:
        return ""
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return None


def read(path: Path, default: str = "") -> str:
    try:
        return path.read_text()
    except OSError:
        return default


def write(path: Path, value) -> None:
    path.write_text(f"{value}\n")


def field(text: str, name: str) -> int:
    """The value of ``name N`` in a flat keyed file (``memory.events``, ``cpu.stat``...)."""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            return int(value)
    return 0


def number(path: Path) -> int:
    text = read(path).strip()
    return int(text) if text.isdigit() else 0


@dataclass
class Usage:
    """What a job's groups measured over its life."""

    memory_peak: int = 0
    oom_kills: int = 0
    pids_peak: int = 0
    pids_refused: int = 0
    throttled_seconds: float = 0.0
    periods: int = 0  # CPU quota periods in which the job ran
    throttled_periods: int = 0  # of them, those in which it used up its quota

    def summary(self) -> str:
        return (
            f"peak memory {self.memory_peak / MIB:.0f} MiB, peak {self.pids_peak} processes and threads, "
            f"CPU held back {self.throttled_seconds:.1f} s in {self.throttled_periods} of {self.periods} "
            "periods"
        )


class JobGroup:
    """One job's groups: created with their limits, entered by the kernel server, measured, removed."""

    def __init__(self, groups: dict[Hierarchy, Path], limits: Limits):
        self.groups = groups
        self.limits = limits

    @classmethod
    def create(cls, name: str, limits: Limits, found: list[Hierarchy] | None = None) -> JobGroup:
        """Groups named ``name`` in every hierarchy; raises OSError when one cannot be made."""
        group = cls({}, limits)
        try:
            for hierarchy in hierarchies() if found is None else found:
                folder = make_group(hierarchy, name)
                group.groups[hierarchy] = folder
                set_limits(hierarchy, folder, limits)
        except OSError:
            group.remove()
            raise
        return group

    @property
    def controllers(self) -> frozenset[str]:
        return frozenset().union(*(h.controllers for h in self.groups))

    def environment(self) -> dict[str, str]:
        return {GROUPS: os.pathsep.join(str(folder) for folder in self.groups.values())}

    def usage(self) -> Usage:
        usage = Usage()
        for hierarchy, folder in self.groups.items():
            v1 = hierarchy.version == 1
            if "memory" in hierarchy.controllers:
                usage.memory_peak = number(folder / ("memory.max_usage_in_bytes" if v1 else "memory.peak"))
                events = read(folder / ("memory.oom_control" if v1 else "memory.events"))
                usage.oom_kills = field(events, "oom_kill")
            if "pids" in hierarchy.controllers:
                usage.pids_peak = number(folder / "pids.peak")
                usage.pids_refused = field(read(folder / "pids.events"), "max")
            if "cpu" in hierarchy.controllers:
                stat = read(folder / "cpu.stat")
                throttled = field(stat, "throttled_time") / 1e9 if v1 else field(stat, "throttled_usec") / 1e6
                usage.throttled_seconds = throttled
                usage.periods = field(stat, "nr_periods")
                usage.throttled_periods = field(stat, "nr_throttled")
        return usage

    def close(self) -> Usage:
        """The job's figures; then every process left in its groups is killed and the groups removed."""
        usage = self.usage()
        self.kill()
        self.remove()
        return usage

    def kill(self) -> None:
        for hierarchy, folder in self.groups.items():
            if "pids" in hierarchy.controllers:
                try:
                    write(folder / "pids.max", 0)  # nothing new starts while the rest is killed
                except OSError:
                    pass
            if (folder / "cgroup.kill").exists():
                try:
                    write(folder / "cgroup.kill", 1)
                except OSError:
                    pass
        deadline = time.monotonic() + REMOVE_SECONDS
        while time.monotonic() < deadline:
            pids = {pid for folder in self.groups.values() for pid in processes(folder)}
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def remove(self) -> None:
        """Remove the job's groups (the ``convae`` parents stay: other jobs may be using them)."""
        deadline = time.monotonic() + REMOVE_SECONDS
        for folder in self.groups.values():
            while True:
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as error:  # EBUSY while the last processes exit
                    if error.errno != errno.EBUSY or time.monotonic() > deadline:
                        break
                    time.sleep(0.05)


def processes(folder: Path) -> list[int]:
    return [int(pid) for pid in read(folder / "cgroup.procs").split()]


def make_group(hierarchy: Hierarchy, name: str) -> Path:
    """``<parent>/convae/<name>``, with the controllers handed down on cgroup v2."""
    error = None
    for parent in hierarchy.parents():
        try:
            if hierarchy.version == 2:
                enable_controllers(parent, hierarchy.controllers)
            parent = parent / PARENT
            parent.mkdir(exist_ok=True)
            if hierarchy.version == 2:
                enable_controllers(parent, hierarchy.controllers)
            if "cpu" in hierarchy.controllers:
                weigh_all_jobs(hierarchy, parent)
            folder = parent / name
            folder.mkdir()
            return folder
        except OSError as failure:
            error = failure
    raise error


def weigh_all_jobs(hierarchy: Hierarchy, parent: Path) -> None:
    """All jobs together weigh as one busy process per core, as their kernels did outside any
    group: a group weighs as one process against its siblings, whatever runs inside it."""
    cores = os.cpu_count() or 1
    if hierarchy.version == 1:
        write(parent / "cpu.shares", 1024 * cores)
    else:
        write(parent / "cpu.weight", min(10_000, 100 * cores))


def enable_controllers(group: Path, controllers) -> None:
    """Hand ``controllers`` down to ``group``'s children (cgroup v2); EBUSY if it holds processes."""
    enabled = set(read(group / "cgroup.subtree_control").split())
    for name in sorted(set(controllers) - enabled):
        write(group / "cgroup.subtree_control", f"+{name}")


def set_limits(hierarchy: Hierarchy, folder: Path, limits: Limits) -> None:
    v1 = hierarchy.version == 1
    if "memory" in hierarchy.controllers and limits.memory:
        if v1:
            write(folder / "memory.limit_in_bytes", limits.memory)
            if (folder / "memory.memsw.limit_in_bytes").exists():  # memory plus swap: no swap either
                write(folder / "memory.memsw.limit_in_bytes", limits.memory)
        else:
            write(folder / "memory.max", limits.memory)
            if (folder / "memory.swap.max").exists():
                write(folder / "memory.swap.max", 0)
    if "pids" in hierarchy.controllers and limits.pids:
        write(folder / "pids.max", limits.pids)
    if "cpu" in hierarchy.controllers and limits.cpus:
        quota = max(1000, round(limits.cpus * CFS_PERIOD_US))
        if v1:
            write(folder / "cpu.cfs_period_us", CFS_PERIOD_US)
            write(folder / "cpu.cfs_quota_us", quota)
            write(folder / "cpu.shares", 1024)
        else:
            write(folder / "cpu.max", f"{quota} {CFS_PERIOD_US}")
            write(folder / "cpu.weight", 100)


def probe(limits: Limits) -> tuple[list[Hierarchy], str | None]:
    """The hierarchies a job group can be made in here, and why the others cannot (None: all can)."""
    found = hierarchies()
    remove_stale_groups(found)
    missing = set(CONTROLLERS) - set().union(*(h.controllers for h in found))
    usable, problems = [], []
    for hierarchy in found:
        try:
            JobGroup.create(f"probe-{os.getpid()}", limits, [hierarchy]).remove()
            usable.append(hierarchy)
        except OSError as error:
            where = hierarchy.parents()[0] / PARENT
            problems.append(f"cannot create {where}/...: {error.strerror or error}")
    if missing:
        problems.append(f"no {', '.join(sorted(missing))} controller mounted")
    return usable, "; ".join(problems) or None


def remove_stale_groups(found: list[Hierarchy]) -> None:
    """Remove the empty job groups of graders that were killed before they could (a dead worker)."""
    for hierarchy in found:
        for parent in hierarchy.parents():
            for folder in (parent / PARENT).glob("*-*"):
                owner = folder.name.split("-")[0]  # job groups are named <grader pid>-...
                if owner.isdigit() and not alive(int(owner)) and not processes(folder):
                    try:
                        folder.rmdir()
                    except OSError:
                        pass


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def flags(usage: Usage, limits: Limits, controllers) -> list[str]:
    """The limits a job ran into, as report flags."""
    found = []
    if "pids" in controllers and usage.pids_refused:
        refused = plural(usage.pids_refused, "new process or thread", "new processes or threads")
        found.append(f"process limit hit: {refused} refused at {limits.pids} (pids.max)")
    if "memory" in controllers and usage.oom_kills:
        found.append(
            f"memory limit hit: the OOM killer ended {plural(usage.oom_kills, 'process', 'processes')} "
            f"of the job at {limits.memory / MIB:.0f} MiB"
        )
    if "cpu" in controllers and limits.cpus and usage.throttled_periods >= CPU_FLAG_PERIODS:
        found.append(
            f"CPU limit hit: held back at its share of {limits.cpus:g} CPU in {usage.throttled_periods} "
            f"of {usage.periods} periods of 0.1 s"
        )
    return found


def plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def enter_groups() -> None:
    """Put this process in the job's groups: whatever it execs and forks stays in them."""
    for folder in os.environ.get(GROUPS, "").split(os.pathsep):
        if folder:
            write(Path(folder) / "cgroup.procs", os.getpid())


def main(argv: list[str]) -> None:
    enter_groups()  # fails loudly: a job must not run outside the limits it was given
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
