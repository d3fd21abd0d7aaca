"""Bounded attacks on a grading machine's resources, and the figures that show whether job limits hold.

``.venv/bin/python tools/limit_attacks.py [--off] [--only NAME...]`` grades each attack in one batch
with an honest student (two jobs at a time), just after grading the same honest student alone and
with an honest peer, and prints for each: what the attack itself measured,
the job's figures (peak memory, processes, CPU held back), its flags and score, and the honest
student's times.
With ``--off`` the job limits are switched off (no cgroups, /tmp and scratch without a size, no
notebook budget): the figures before them. ``tests/test_limits.py`` grades the same attacks with
the limits on and checks them.

Every attacker hands in the complete, correct ps1/conv_arithmetic submission with extra lines at
the top of its first answer cell (or, for ``hangs``, answers that hang when called). Each attack
is bounded, so that a limit that fails cannot take the machine down: at most 1,000 processes,
4 GiB written to /tmp, 10 GiB touched across fresh processes, 16 busy threads for 15 s.
"""

import argparse
import re
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "conv_arithmetic"
FULL = 13  # autograded points of a correct submission
FIRST_ANSWER = "dense_param_count"
MIB = 2**20

FORK = """\
import os as _os, signal as _signal, time as _time
_children, _refused = [], 'nothing refused'
for _ in range(1000):
    try:
        _pid = _os.fork()
    except OSError as _error:
        _refused = f'{type(_error).__name__}: {_error.strerror}'
        break
    if _pid == 0:
        _time.sleep(60)
        _os._exit(0)
    _children.append(_pid)
print(f'ATTACK: {len(_children)} processes forked, then {_refused}')
for _pid in _children:
    _os.kill(_pid, _signal.SIGKILL)
    _os.waitpid(_pid, 0)
"""

FILL = """\
import os as _os
_folder = FOLDER
_block, _written, _files, _refused = b'\\0' * 2**20, 0, {}, 'nothing refused'
while _written < 4 * 2**30:
    _n = _written // (128 * 2**20)  # files of 128 MiB: under the 256 MiB a process may write in one
    if _n not in _files:
        _files[_n] = _os.open(f'{_folder}/fill-{_n}', _os.O_WRONLY | _os.O_CREAT | _os.O_TRUNC)
    try:
        _written += _os.write(_files[_n], _block)
    except OSError as _error:
        _refused = f'{type(_error).__name__}: {_error.strerror}'
        break
print(f'ATTACK: {_written / 2**20:.0f} MiB written to {_folder} in {len(_files)} files, then {_refused}')
for _fd in _files.values():
    _os.close(_fd)
"""
FILL_TMP = FILL.replace("FOLDER", "'/tmp'")
FILL_SCRATCH = FILL.replace("FOLDER", "_os.getcwd()")  # the working copy of the submission
# The folder of the kernel's sockets, the one folder outside the sandbox it may write.
FILL_RUNTIME = FILL.replace("FOLDER", "_os.environ['CONVAE_GRADING_RUNTIME']")

FRESH_PROCESSES = """\
import subprocess as _sp, sys as _sys
_child = (
    "import sys\\n"
    "block = bytearray(int(sys.argv[1]))\\n"
    "for i in range(0, len(block), 4096):\\n"
    "    block[i] = 1\\n"
    "print('touched', flush=True)\\n"
    "sys.stdin.read()\\n"
)
_size, _alive, _started, _refused = 1280 * 2**20, [], 0, 'nothing refused'
while _started * _size < 10 * 2**30:
    _p = _sp.Popen([_sys.executable, '-c', _child, str(_size)], stdin=_sp.PIPE, stdout=_sp.PIPE)
    _started += 1
    _touched = _p.stdout.readline().strip() == b'touched'
    _alive.append(_p)
    _dead = [p for p in _alive if p.poll() is not None]
    if not _touched or _dead:
        _refused = f'one was killed (exit {_dead[0].returncode if _dead else _p.wait()})'
        break
_held = sum(p.poll() is None for p in _alive) * _size
print(f'ATTACK: {_started} fresh processes of {_size // 2**20} MiB started, then {_refused}; '
      f'{_held // 2**20} MiB held by the live ones')
for _p in _alive:
    _p.kill()
    _p.wait()
"""

BUSY_THREADS = """\
import os as _os, threading as _threading, time as _time, zlib as _zlib
_end = _time.monotonic() + 15
_block = _os.urandom(2**20)
def _spin():
    while _time.monotonic() < _end:
        _zlib.compress(_block, 9)  # releases the GIL: 16 threads really run at once
_cpu, _wall = _time.process_time(), _time.monotonic()
_threads = [_threading.Thread(target=_spin) for _ in range(16)]
for _t in _threads:
    _t.start()
for _t in _threads:
    _t.join()
_used = (_time.process_time() - _cpu) / (_time.monotonic() - _wall)
print(f'ATTACK: 16 busy threads for 15 s used {_used:.2f} CPU')
"""

KILLS_SERVER = """\
import os as _os, signal as _signal, time as _time
_os.kill(_os.getppid(), _signal.SIGKILL)  # the kernel server, which forked this kernel
_time.sleep(60)  # the sandbox ends with its server: this kernel dies in this cell
"""

ANSWERS = ("dense_param_count", "conv2d_param_count", "conv2d_output_size", "conv_transpose2d_output_size")


def prepend(code):
    def attack(nb):
        cell = cells(nb)[FIRST_ANSWER]
        cell.source = code + "\n" + cell.source

    return attack


def hangs(nb):
    """Every answer hangs when called: every test cell waits for it until its time is up."""
    for name in ANSWERS:
        cells(nb)[name].source = f"def {name}(*args, **kwargs):\n    import time\n    time.sleep(3600)\n"


def cells(nb):
    from convae import notebooks

    return notebooks.cells_by_id(nb)


# name -> (attack, expected autograded score, the flag that names the limit it hits)
ATTACKS = {
    "fork": (prepend(FORK), FULL, "process limit hit"),
    "fill-tmp": (prepend(FILL_TMP), FULL, "/tmp ("),
    "fill-scratch": (prepend(FILL_SCRATCH), FULL, "fill-scratch/ps1 ("),
    # The kernel's writes there are memory the OOM killer can only free by ending it: the answer
    # in that cell is lost, the test of it fails.
    "fill-runtime": (prepend(FILL_RUNTIME), FULL - 3, "memory limit hit"),
    "fresh-processes": (prepend(FRESH_PROCESSES), FULL, "memory limit hit"),
    "busy-threads": (prepend(BUSY_THREADS), FULL, "CPU limit hit"),
    "hangs": (hangs, 0, "time budget of"),
    # Where the OOM killer ends the kernel server (it prefers the kernels): the kernel dies with
    # it, costing its cell (the first answer, and its test), and a new server takes over.
    "kills-server": (prepend(KILLS_SERVER), FULL - 3, "dense_param_count: the kernel died"),
}
# What the attacks are graded under (tests/test_limits.py): below the defaults, so that each one
# runs into its limit quickly. A cell may take 25 s (the busy threads spin for 15 s in one); an
# honest notebook takes 5-20 s, two jobs at a time on a busy 2-core machine.
TIMEOUT = 25
LIMITS = dict(
    job_memory=2048 * MIB,
    job_pids=256,
    job_cpus=1.0,
    tmp_size=256 * MIB,
    scratch_size=64 * MIB,
    notebook_seconds=40,
)
NO_LIMITS = dict(
    job_memory=0, job_pids=0, job_cpus=0, tmp_size=0, scratch_size=0, notebook_seconds=0, cgroups=()
)


def build_course(root: Path, attacks) -> Path:
    """ps1/conv_arithmetic alone; the honest student, an honest peer and one student per attack."""
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import copy_course

    from convae import course, notebooks

    copy_course(root)
    for path in (root / "source").iterdir():
        if path.name != "ps1":
            shutil.rmtree(path)
    for path in (root / "source" / "ps1").glob("*.ipynb"):
        if path.stem != NOTEBOOK:
            path.unlink()
    course.generate_release(root)
    for student in ("honest", "peer"):
        course.build_submission(root, student, course.SOLUTION, "ps1")
    for name in attacks:
        course.build_submission(root, name, course.SOLUTION, "ps1")
        path = root / "submitted" / name / "ps1" / f"{NOTEBOOK}.ipynb"
        nb = notebooks.read(path)
        ATTACKS[name][0](nb)
        notebooks.write(nb, path)
    return root


def grade(settings, students) -> dict:
    """student -> (their JobResult, their autograded score), graded two jobs at a time."""
    from convae import course
    from convae.grading import pipeline

    results = pipeline.grade_class(settings, jobs=2, students=students, progress=False)
    scores = {g.student: g.score for g in course.notebook_grades(settings.root) if g.notebook == NOTEBOOK}
    return {r.student: (r, scores.get(r.student)) for r in results}


def attack_report(root: Path, student: str) -> str:
    """The line the attack printed in its graded notebook."""
    from convae import notebooks

    nb = notebooks.read(root / "autograded" / student / "ps1" / f"{NOTEBOOK}.ipynb")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    found = re.findall(r"ATTACK: .*", text)
    return found[0] if found else "(no report: the attack's cell did not finish)"


def run(root: Path, settings, attacks, alone: bool = True) -> dict:
    """Each attack's outcome, graded as the module docstring says (``alone``: also time the honest
    student graded alone, a figure to print that the tests do not need)."""
    from convae.grading import judge, pipeline

    outcomes = {}
    settings, _ = pipeline.machine_settings(settings, 2)
    with judge.JudgeServer() as judges:
        settings = replace(settings, judge_socket=judges.path)
        for name in attacks:
            # The honest student (alone and) beside an honest peer, just before the attack: the
            # machine's other load is then about the same in each.
            solo = grade(settings, ["honest"])["honest"][0].seconds if alone else None
            with_peer = grade(settings, ["honest", "peer"])["honest"][0].seconds
            graded = grade(settings, ["honest", name])
            outcomes[name] = {
                "attacker": graded[name][0],
                "score": graded[name][1],
                "report": attack_report(root, name),
                "honest": graded["honest"],
                "alone": solo,
                "with_peer": with_peer,
            }
    return outcomes


def describe(name: str, outcome: dict) -> str:
    attacker, honest = outcome["attacker"], outcome["honest"][0]
    lines = [
        f"{name}: {outcome['report']}",
        f"  attacker: {attacker.status}, {outcome['score']} / {FULL} points, {attacker.seconds:.1f} s; "
        f"{attacker.usage or 'no cgroup figures'}",
        *(f"  flag: {flag}" for flag in attacker.flags),
        f"  honest: {outcome['honest'][1]} / {FULL} points, flags {honest.flags}; {honest_times(outcome)}",
    ]
    return "\n".join(lines)


def honest_times(outcome: dict) -> str:
    """The honest student's time beside the attacker, and as a ratio of their time beside a peer
    (and alone, where that was measured)."""
    seconds, peer, alone = outcome["honest"][0].seconds, outcome["with_peer"], outcome["alone"]
    text = f"{seconds:.1f} s beside the attacker, {peer:.1f} s beside a peer (x{seconds / peer:.2f})"
    return text + (f", {alone:.1f} s alone (x{seconds / alone:.2f})" if alone else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--off", action="store_true", help="switch the job limits off: the figures before")
    parser.add_argument("--only", nargs="+", choices=sorted(ATTACKS), default=sorted(ATTACKS))
    args = parser.parse_args()

    from convae.grading import pipeline

    enabled, note = pipeline.sandbox_setting("on")
    root = build_course(Path(tempfile.mkdtemp(prefix="limit-attacks-")) / "course", args.only)
    limits = NO_LIMITS if args.off else LIMITS
    settings = pipeline.Settings(root, sandbox=enabled, timeout=TIMEOUT, **limits)
    resolved, problem = pipeline.machine_settings(settings, 2)
    print(pipeline.grading_note(resolved, note, problem), flush=True)
    try:
        for name, outcome in run(root, settings, args.only).items():
            print(describe(name, outcome), flush=True)
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
