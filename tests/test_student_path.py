"""A student's path from the bundle alone, and a hub's round trip through nbgrader's exchange.

Everything a student runs here runs in a fresh virtual environment outside the repository, made
from the bundle (its ``requirements.txt``, then the wheel through the notebooks' install cell, as on
Colab), on notebooks copied out of the bundle, inside bubblewrap with the checkout hidden and no
network: nothing can be read from this repository, and ``convae`` can only come from the wheel.

The course copy's install cells point at the bundle's wheel on disk (``c.CoursePackage.url``), the
only address there is without a network. The notebooks run in grading mode by default
(``NBGRADER_EXECUTION=validate``: shortened training, the embedded data subset, as ``nbgrader
validate`` runs them); ``CONVAE_STUDENT_RUN=full`` runs them as a student's Restart & Run All does.
"""

import csv
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, copy_course

import convae
from convae import bundle, course, install_cell, notebooks

pytestmark = pytest.mark.system("bubblewrap")

FULL_RUN = os.environ.get("CONVAE_STUDENT_RUN") == "full"
CELL_TIMEOUT = 900 if FULL_RUN else 300
STUDENT = "student-path"
UNREACHABLE = "http://127.0.0.1:9/convae-0.1.0-py3-none-any.whl"  # discard port: refused at once
# The student's venv is made from the Python that runs the suite (not its venv): the pinned
# versions need Python 3.11.5 or newer, which Debian 12's Python (3.11.2) is not.
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable)).resolve()


@dataclass
class Place:
    base: Path  # a world-readable folder outside the repository
    root: Path  # the course copy (the instructor's side)
    dist: Path  # its student bundle
    venv: Path  # the student's environment
    home: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def as_student(place: Place, args, cwd: Path, timeout: int = 1800) -> subprocess.CompletedProcess:
    """``args`` in the student's environment: the checkout hidden, no network, a clean environment."""
    sandbox = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", REPO, "--unshare-net", "--die-with-parent"]
    env = {
        "PATH": f"{place.venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(place.home),
        "LANG": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
    }
    if not FULL_RUN:
        env["NBGRADER_EXECUTION"] = "validate"
    return run([*sandbox, "--chdir", cwd, "--", *args], env=env, timeout=timeout)


@pytest.fixture(scope="session")
def place():
    """The course copy, its bundle (install cells pointing at the wheel on disk) and a fresh venv
    with the bundle's pinned third-party packages, and no convae."""
    base = Path(tempfile.mkdtemp(prefix="convae-student-path-"))
    try:
        base.chmod(0o755)
        yield make_place(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def make_place(base: Path) -> Place:
    root = copy_course(base / "course")
    dist = base / "dist"
    wheel = dist / f"convae-{convae.__version__}-py3-none-any.whl"
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.CoursePackage.url = {wheel.as_uri()!r}\n")
    course.generate_release(root)
    bundle.build(root, dist, check_fresh=False)
    here = Place(base, root, dist, base / "venv", base / "home")
    here.home.mkdir()
    made = run([BASE_PYTHON, "-m", "venv", here.venv])
    assert made.returncode == 0, made.stderr
    # --no-compile: bytecode is written on first import instead (half the install time here)
    pip = [here.python, "-m", "pip", "install", "--quiet", "--no-compile"]
    installed = run([*pip, "-r", dist / "requirements.txt"])
    assert installed.returncode == 0, installed.stderr[-3000:]
    run(["chmod", "-R", "a+rX", base])
    return here


def test_the_course_setting_is_the_address_of_every_notebooks_install_cell(place):
    wheel = place.dist / f"convae-{convae.__version__}-py3-none-any.whl"
    for path in sorted(place.dist.glob("*/*.ipynb")):
        first_code = next(c for c in notebooks.read(path).cells if c.cell_type == "code")
        assert notebooks.grade_id(first_code) == install_cell.GRADE_ID, path
        assert install_cell.address(first_code.source) == wheel.as_uri(), path


def install_cell_source(path: Path, address: str | None = None) -> str:
    cell = next(c for c in notebooks.read(path).cells if notebooks.grade_id(c) == install_cell.GRADE_ID)
    source = cell.source
    if address is not None:
        source = install_cell.ADDRESS_LINE.sub(f'COURSE_PACKAGE = "{address}"', source)
    return source


def torch_and_convae(place: Place, cwd: Path) -> dict:
    probe = "import json, importlib.util, torch; s = importlib.util.find_spec('convae'); "
    probe += "print(json.dumps([torch.__version__, torch.__file__, s and s.origin]))"
    proc = as_student(place, [place.python, "-c", probe], cwd)
    assert proc.returncode == 0, proc.stderr
    version, path, convae_file = json.loads(proc.stdout)
    return {"torch": (version, path), "convae": convae_file}


@pytest.fixture(scope="session")
def colab(place):
    """The install cell, as on Colab: first with an address that does not answer, then with the
    course's (the wheel on disk), then once more where convae is installed."""
    cwd = place.base / "colab"
    cwd.mkdir()
    first = place.dist / "ps1" / "conv_arithmetic.ipynb"
    before = torch_and_convae(place, cwd)
    refused = as_student(place, [place.python, "-c", install_cell_source(first, UNREACHABLE)], cwd)
    installed = as_student(place, [place.python, "-c", install_cell_source(first)], cwd)
    after = torch_and_convae(place, cwd)
    again = as_student(place, [place.python, "-c", install_cell_source(first, UNREACHABLE)], cwd)
    return before, refused, installed, after, again


def test_install_cell_that_cannot_reach_its_address_says_what_to_do_in_one_line(colab):
    before, refused, *_ = colab
    assert before["convae"] is None, "the fresh environment must not have convae"
    assert refused.returncode != 0
    message = refused.stderr.strip().splitlines()[-1]
    assert message.startswith(f"RuntimeError: The course package could not be installed from {UNREACHABLE}")
    assert "put it beside this notebook (on Colab: the Files panel) and run this cell again" in message


def test_install_cell_installs_the_wheel_and_keeps_the_installed_torch(colab, place):
    before, _, installed, after, again = colab
    assert installed.returncode == 0, installed.stderr
    assert after["convae"].startswith(str(place.venv)), after["convae"]
    assert after["torch"] == before["torch"], "pip replaced the environment's torch"
    assert again.returncode == 0 and again.stdout == "", "where convae is installed the cell must do nothing"


def student_run(place: Place, folder: Path, name: str) -> dict:
    """Run every notebook in ``folder`` as the student (after the install cell has installed convae)."""
    runner = place.base / "student_runner.py"
    shutil.copy2(REPO / "tests" / "student_runner.py", runner)

    def run_notebook(path: Path) -> dict:
        out = path.with_suffix(f".{name}.ipynb")
        proc = as_student(place, [place.python, runner, path, out, CELL_TIMEOUT], path.parent)
        assert proc.returncode == 0, f"{path.name}: {proc.stderr[-3000:]}"
        return {**json.loads(proc.stdout), "executed": out}

    paths = sorted(folder.glob("*/*.ipynb"))
    with ThreadPoolExecutor(max_workers=2) as pool:  # two kernels of one thread each
        results = {
            f"{p.parent.name}/{p.stem}": result
            for p, result in zip(paths, pool.map(run_notebook, paths), strict=True)
        }
    for key, result in results.items():
        errors = sum(bool(c["errors"]) for c in result["cells"])
        images = sum(c["images"] for c in result["cells"])
        print(
            f"{name:8} {key:30} {result['seconds']:7.1f} s  {errors:2} cells with errors  {images:3} images"
        )
    return results


def copy_notebooks(place: Place, name: str) -> Path:
    folder = place.base / name
    for assignment in course.assignments(REPO):
        shutil.copytree(place.dist / assignment, folder / assignment)
    return folder


def paste_reference_answers(folder: Path) -> None:
    """Every answer cell as the reference solution, as a student would have typed it."""
    for path in folder.glob("*/*.ipynb"):
        source = REPO / "source" / path.parent.name / path.name
        notebooks.write(course.answered(path, source, course.SOLUTION), path)


@pytest.fixture(scope="session")
def stub_runs(place, colab):
    return student_run(place, copy_notebooks(place, "stubs"), "stubs")


@pytest.fixture(scope="session")
def answered_runs(place, colab):
    folder = copy_notebooks(place, "answered")
    paste_reference_answers(folder)
    return folder, student_run(place, folder, "answers")


def test_untouched_stubs_stop_only_at_answers_with_not_implemented(stub_runs):
    others = []
    for key, result in stub_runs.items():
        errors = [name for cell in result["cells"] for name in cell["errors"]]
        assert errors, f"{key}: a notebook with unanswered stubs ran without an error"
        first = next(cell for cell in result["cells"] if cell["errors"])
        assert first["grade_id"] not in ("install", "imports"), key
        others += [
            f"{key}:{cell['grade_id']}: {cell['errors']} {cell['evalues']}"
            for cell in result["cells"]
            if set(cell["errors"]) - {"NotImplementedError"}
        ]
    assert others == [], "\n".join(others)


def test_reference_answers_run_clean_with_silent_checks_and_figures(answered_runs):
    _, results = answered_runs
    tests = {
        notebooks.grade_id(c)
        for path in (REPO / "source").glob("*/*.ipynb")
        for c in notebooks.read(path).cells
        if notebooks.is_test_cell(c)
    }
    for key, result in results.items():
        for cell in result["cells"]:
            assert not cell["errors"], f"{key}:{cell['grade_id']}: {cell['errors']} {cell['evalues']}"
            if cell["grade_id"] in tests:
                assert not cell["printed"] and not cell["images"], f"{key}:{cell['grade_id']} is not silent"
        assert sum(cell["images"] for cell in result["cells"]) > 0, f"{key} shows no figure"


def test_the_students_folder_grades_like_the_example_classs_complete_student(graded):
    place, *_ = graded
    got = {
        (g.assignment, g.notebook): g.score
        for g in course.notebook_grades(place.root)
        if g.student == STUDENT
    }
    with open(REPO / "examples" / "expected_grades.csv") as f:
        expected = {
            (row["assignment"], row["notebook"]): float(row["score"])
            for row in csv.DictReader(f)
            if row["student"] == "example-complete"
        }
    assert got == expected


def hand_in_the_students_folder(place: Place, results: dict) -> None:
    """The executed notebooks of the student's folder, handed in as nbgrader lays a submission out."""
    for result in results.values():
        executed = Path(result["executed"])
        target = (
            place.root / "submitted" / STUDENT / executed.parent.name / executed.name.replace(".answers", "")
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(executed, target)
        (target.parent / "timestamp.txt").write_text("2026-12-01 12:00:00.000000 UTC")


# --- JupyterHub: nbgrader's exchange ---------------------------------------------------------

COURSE_ID = "conv-to-vae"
STUDENTS = ("convae-alice", "convae-bob")


def make_users() -> list[str]:
    """Two course users when this run may create them (as root), else the one running it."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        return [pwd.getpwuid(os.getuid()).pw_name]
    for user in STUDENTS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            made = run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
            assert made.returncode == 0, made.stderr
    return list(STUDENTS)


def closed_ancestor(path: Path) -> Path | None:
    """The first folder above ``path`` that other users may not enter (``/root``), if any."""
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & 0o001:
            return parent
    return None


def as_user(user: str, command: list) -> list:
    """``command`` run as ``user``. A hub has a Python every user may run; where this suite's
    Python lies in a folder only its owner may enter, a mount namespace shows that Python alone."""
    if user == pwd.getpwuid(os.getuid()).pw_name:
        return command
    entry = pwd.getpwnam(user)
    switch = ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", "--"]
    prefix = Path(sys.base_prefix).resolve()
    closed = closed_ancestor(prefix)
    if closed is None:
        return [*switch, *command]
    shown = ["bwrap", "--dev-bind", "/", "/", "--tmpfs", closed, "--ro-bind", prefix, prefix]
    return [*shown, "--die-with-parent", "--", *switch, *command]


def nbgrader_as(place: Place, user: str, args, cwd: Path, exchange: Path) -> subprocess.CompletedProcess:
    """A student's nbgrader command, as that user, in their own folder."""
    env = {"PATH": f"{place.venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    command = [place.venv / "bin" / "nbgrader", *args, f"--Exchange.root={exchange}", "--log-level=WARN"]
    return run(as_user(user, command), cwd=cwd, env=env, timeout=600)


def instructor_nbgrader(place: Place, args, exchange: Path) -> subprocess.CompletedProcess:
    nbgrader = Path(sys.executable).parent / "nbgrader"
    return run(
        [nbgrader, *args, f"--Exchange.root={exchange}", "--log-level=WARN"], cwd=place.root, timeout=900
    )


@pytest.fixture(scope="session")
def graded(place, answered_runs):
    """The hub's round trip for ps1 (release_assignment, fetch, answer, submit, collect) with the
    students' folder handed in beside it; one grading run for everyone (``bash course.sh grade``);
    then generate_feedback, release_feedback and each student's fetch_feedback. The hub's
    environment is the students' venv with nbgrader added."""
    hub = run([place.python, "-m", "pip", "install", "--quiet", "nbgrader==0.9.6"])
    assert hub.returncode == 0, hub.stderr[-3000:]
    users = make_users()
    exchange = place.base / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    log = []

    def step(what, proc):
        log.append((what, proc.returncode))
        assert proc.returncode == 0, f"{what}: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
        return proc

    step("release_assignment", instructor_nbgrader(place, ["release_assignment", "ps1", "--force"], exchange))
    homes = {}
    for index, user in enumerate(users):
        homes[user] = private_home(place, user)
        fetch = ["fetch_assignment", "ps1", f"--course={COURSE_ID}"]
        step(f"{user}: fetch_assignment", nbgrader_as(place, user, fetch, homes[user], exchange))
        if index == 0:  # the first student hands in the reference answers, the second the stubs
            for path in (answered_runs[0] / "ps1").glob("*.ipynb"):
                if "." not in path.stem:
                    shutil.copy2(path, homes[user] / "ps1" / path.name)
                    shutil.chown(homes[user] / "ps1" / path.name, user)
        submit = ["submit", "ps1", f"--course={COURSE_ID}"]
        step(f"{user}: submit", nbgrader_as(place, user, submit, homes[user], exchange))
    step("collect", instructor_nbgrader(place, ["collect", "ps1"], exchange))
    hand_in_the_students_folder(place, answered_runs[1])
    students = [argument for user in [STUDENT, *users] for argument in ("--student", user)]
    step(
        "course.sh grade",
        run(["bash", REPO / "course.sh", "--root", place.root, "grade", *students], timeout=1800),
    )
    step("generate_feedback", instructor_nbgrader(place, ["generate_feedback", "ps1", "--force"], exchange))
    # Per student: release_feedback needs the submission_secret.txt that only the exchange's
    # submissions carry, and the students' folder was handed in another way.
    for user in users:
        release = ["release_feedback", "ps1", f"--student={user}"]
        step(f"release_feedback --student={user}", instructor_nbgrader(place, release, exchange))
    for user in users:
        fetch = ["fetch_feedback", "ps1", f"--course={COURSE_ID}"]
        step(f"{user}: fetch_feedback", nbgrader_as(place, user, fetch, homes[user], exchange))
    return place, users, homes, exchange, log


def private_home(place: Place, user: str) -> Path:
    home = place.base / "homes" / user
    home.mkdir(parents=True)
    shutil.chown(home, user, pwd.getpwnam(user).pw_gid)
    home.chmod(0o700)  # a hub's homes are private
    return home


def test_exchange_round_trip_returns_each_student_their_own_feedback(graded):
    place, users, homes, exchange, log = graded
    print("\n" + "\n".join(f"{what}: exit {code}" for what, code in log))
    print(f"students: {', '.join(users)}")
    grades = {
        (g.student, g.notebook): g.score for g in course.notebook_grades(place.root) if g.assignment == "ps1"
    }
    first = users[0]
    assert grades[(first, "conv_arithmetic")] == 13 and grades[(first, "transposed_convolutions")] == 17
    for user in users:
        pages = sorted((homes[user] / "ps1" / "feedback").glob("*/*.html"))
        assert {p.name for p in pages} == {
            "conv_arithmetic.html",
            "deconvnet.html",
            "transposed_convolutions.html",
        }
        text = (pages[0].parent / "conv_arithmetic.html").read_text()
        score = grades[(user, "conv_arithmetic")]
        assert f"conv_arithmetic (Score: {score:.1f} / 15.0)" in text
        assert "BEGIN HIDDEN TESTS" not in text and "mathjax.js" not in text.lower()


def test_exchange_keeps_students_apart(graded):
    _, users, homes, exchange, _ = graded
    if len(users) < 2:
        pytest.skip("one course user only: this run cannot create users")  # said in the report
    inbound = exchange / COURSE_ID / "inbound"
    listing = run(as_user(users[1], ["ls", inbound]))
    assert listing.returncode != 0, "a student can list the other students' submissions"
    others = run(as_user(users[1], ["cat", homes[users[0]] / "ps1" / "conv_arithmetic.ipynb"]))
    assert others.returncode != 0, "a student can read another student's notebook"
