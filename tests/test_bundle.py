"""What students receive (``bash course.sh student-bundle``): complete, clean, refused when stale.

The bundle is built once per run from this checkout (the release is checked fresh by
``test_release``); every file and archive member is scanned again here for secret lines, and the
scanner is shown to find lines planted where a careless build would put them.
"""

import email
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, copy_course, load_tool

from convae import bundle, course, install_cell, leaks, notebooks

# The course's infrastructure that must stay with the course team.
INSTRUCTOR_MODULES = (
    "convae/__main__.py",
    "convae/course.py",
    "convae/leaks.py",
    "convae/install_cell.py",
    "convae/rendering.py",
    "convae/bundle/",
    "convae/review/",
    "convae/grading/judge.py",
    "convae/grading/agent.py",
    "convae/grading/execute.py",
    "convae/grading/pipeline.py",
    "convae/grading/sandbox.py",
    "convae/grading/kernel_server.py",
    "convae/grading/cluster.py",
    "convae/grading/feedback.py",
    "convae/grading/canonicalise.py",
)
FORBIDDEN_FOLDERS = ("source", "tests", "examples", "autograded", "feedback", "submitted")


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "dist"
    report = bundle.build(REPO, out, check_fresh=False)
    return out, report


def wheel_of(out: Path) -> zipfile.ZipFile:
    return zipfile.ZipFile(next(out.glob("convae-*.whl")))


def test_bundle_holds_what_students_need(built):
    out, _ = built
    for assignment in course.assignments(REPO):
        released = sorted(p.name for p in (REPO / "release" / assignment).glob("*.ipynb"))
        assert sorted(p.name for p in (out / assignment).glob("*.ipynb")) == released
        for name in released:
            assert (out / assignment / name).read_bytes() == (
                REPO / "release" / assignment / name
            ).read_bytes()
    for name in ("README.md", "requirements.txt", "environment.yml", "SHA256SUMS"):
        assert (out / name).is_file(), name
    zips = sorted(p.name for p in (out / "zips").glob("*.zip"))
    assert zips == ["conv-to-vae-ps1.zip", "conv-to-vae-ps2.zip", "conv-to-vae-ps3.zip", "conv-to-vae.zip"]
    with zipfile.ZipFile(out / "zips" / "conv-to-vae-ps2.zip") as archive:
        names = archive.namelist()
    assert "conv-to-vae-ps2/ps2/conv_autoencoders.ipynb" in names and "conv-to-vae-ps2/README.md" in names
    assert not any("/ps1/" in name or "/ps3/" in name for name in names)
    for line in (out / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest, name


def test_wheel_has_the_teaching_helpers_and_no_grading_machinery(built):
    out, _ = built
    names = wheel_of(out).namelist()
    for module in ("data", "training", "plotting", "pretrained", "summary", "notebooks", "grading/checks"):
        assert f"convae/{module}.py" in names, module
    assert "convae/assets/fashion_mnist_subset.npz" in names
    assert {f"convae/assets/{p.name}" for p in (REPO / "convae" / "assets").iterdir()} <= set(names)
    for private in INSTRUCTOR_MODULES:
        assert not any(name.startswith(private) for name in names), private


def test_wheel_declares_the_versions_the_notebooks_are_written_for(built):
    out, _ = built
    archive = wheel_of(out)
    metadata = email.message_from_bytes(archive.read("convae-0.1.0.dist-info/METADATA"))
    assert metadata["Requires-Python"] == ">=3.11"
    requires = metadata.get_all("Requires-Dist")
    assert "torch>=2.11" in requires and "numpy>=2.1" in requires and "matplotlib>=3.10" in requires
    assert not any(name.split(">")[0].split("=")[0] in ("nbgrader", "dask", "psycopg") for name in requires)


def test_students_requirements_pin_the_graders_versions(built):
    out, _ = built
    pins = dict(
        line.split("==") for line in (out / "requirements.txt").read_text().splitlines() if "==" in line
    )
    graders = dict(
        line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines() if "==" in line
    )
    for name in ("torch", "numpy", "matplotlib", "jupyterlab", "ipykernel", "nbformat", "tqdm"):
        assert pins[name] == graders[name], name
    assert "nbgrader" not in pins and "dask" not in pins


def test_bundle_leaks_nothing(built):
    out, report = built
    again = leaks.scan(out, leaks.course_secrets(REPO))
    found = len(again.leaks)
    print(f"\nleak scan: {again.files} files and members, {again.secrets} secret lines, {found} found")
    assert again.leaks == [] and report.leaks == []
    assert again.files > 100 and again.secrets > 1000  # the wheel's members and the zips' were opened
    sources = [p for folder in FORBIDDEN_FOLDERS for p in (REPO / folder).rglob("*") if p.is_file()]
    forbidden = {hashlib.sha256(p.read_bytes()).hexdigest(): p for p in sources}
    for path in out.rglob("*"):
        if path.is_file():
            for name, data in leaks.members(path.name, path.read_bytes()):
                assert hashlib.sha256(data).hexdigest() not in forbidden, f"{name} is a copy of a course file"
                assert not any(f"{folder}/" in name for folder in ("source", "tests", "examples")), name


def planted_wheel(wheel: Path, member: str, text: str) -> bytes:
    """The wheel's bytes with one more member."""
    buffer = io.BytesIO(wheel.read_bytes())
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(member, text)
    return buffer.getvalue()


def test_the_scan_finds_planted_secrets(built, tmp_path):
    out, _ = built
    secrets = leaks.course_secrets(REPO)
    source = REPO / "source" / "ps3" / "vae_theory.ipynb"
    hidden = sorted(leaks.source_secrets(source, ("hidden",)) - leaks.package_lines())
    solution = sorted(leaks.source_secrets(source, ("solution",)))
    quoted = next(line for line in hidden if '"' in line)  # JSON escapes it in a notebook
    planted = tmp_path / "dist"
    shutil.copytree(out, planted)
    wheel = next(planted.glob("convae-*.whl"))
    # A hidden-test line in a notebook inside a problem-set zip, a solution in a module in the wheel
    # inside that zip, and a source notebook copied whole into the bundle.
    nb = notebooks.read(planted / "ps3" / "vae_theory.ipynb")
    nb.cells[-1].source += "\n" + quoted
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("x/ps3/vae_theory.ipynb", json.dumps(nb, indent=1))
        archive.writestr(wheel.name, planted_wheel(wheel, "convae/extra.py", solution[0]))
    (planted / "zips" / "extra.zip").write_bytes(inner.getvalue())
    shutil.copy2(source, planted / "copy.ipynb")
    found = {(leak.file, leak.secret) for leak in leaks.scan(planted, secrets).leaks}
    assert ("zips/extra.zip!x/ps3/vae_theory.ipynb", quoted) in found
    assert (f"zips/extra.zip!{wheel.name}!convae/extra.py", solution[0]) in found
    assert ("copy.ipynb", "BEGIN SOLUTION") in found


def test_a_stale_release_is_refused_and_nothing_written(tmp_path):
    root = copy_course(tmp_path / "course")
    shutil.copytree(REPO / "release", root / "release")
    nb = notebooks.read(root / "source" / "ps1" / "conv_arithmetic.ipynb")
    nb.cells[0].source += "\n\nA sentence added after the release was generated."
    notebooks.write(nb, root / "source" / "ps1" / "conv_arithmetic.ipynb")
    out = tmp_path / "dist"
    with pytest.raises(
        bundle.BundleError, match=r"release/ is stale \(ps1/conv_arithmetic.ipynb.*course.sh release"
    ):
        bundle.build(root, out)
    assert not out.exists() and not list(tmp_path.glob(".dist-*"))


def test_an_unknown_problem_set_is_refused_with_the_known_ones(tmp_path):
    out = tmp_path / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "convae", "student-bundle", "--assignment", "ps9", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown problem set ps9; the course has ps1, ps2, ps3" in proc.stderr
    assert not out.exists()


def test_one_problem_set_and_the_same_bytes_twice(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    bundle.build(REPO, first, ["ps1"], check_fresh=False)
    bundle.build(REPO, second, ["ps1"], check_fresh=False)
    assert sorted(p.name for p in (first / "zips").iterdir()) == ["conv-to-vae-ps1.zip", "conv-to-vae.zip"]
    assert not (first / "ps2").exists()
    assert (first / "SHA256SUMS").read_text() == (second / "SHA256SUMS").read_text()


def test_the_release_installs_from_the_courses_address_in_its_first_code_cell():
    for path in sorted((REPO / "release").glob("*/*.ipynb")):
        first_code = next(c for c in notebooks.read(path).cells if c.cell_type == "code")
        assert notebooks.grade_id(first_code) == install_cell.GRADE_ID, path
        assert install_cell.address(first_code.source) == install_cell.CoursePackage.url.default_value
    assert install_cell.is_placeholder(install_cell.CoursePackage.url.default_value)


def test_every_third_party_import_of_the_wheel_is_declared():
    modules = bundle.student_modules(sorted((REPO / "release").glob("*/*.ipynb")))
    assert "convae.grading.checks" in modules and "convae.grading.judge" not in modules
    assert bundle.undeclared_imports(modules) == []


def test_the_gpu_run_rebuilds_the_students_wheel_byte_for_byte_from_a_copy_without_assets(built, tmp_path):
    """tools/gpu_student_run.py sends the wheel without its 20 MiB of assets and puts them back from
    the checkout on the device, each checked against the wheel's RECORD."""
    gpu = load_tool("gpu_student_run")
    wheel = next(built[0].glob("convae-*.whl"))
    stripped, rebuilt = tmp_path / "stripped" / wheel.name, tmp_path / wheel.name
    gpu.strip_assets(wheel, stripped)
    assert stripped.stat().st_size < 2**20
    assert gpu.restore_assets(stripped, rebuilt) > 0
    original, again = zipfile.ZipFile(wheel), zipfile.ZipFile(rebuilt)
    assert sorted(original.namelist()) == sorted(again.namelist())
    assert all(original.read(name) == again.read(name) for name in original.namelist())
    other = tmp_path / "other"
    shutil.copytree(REPO / "convae" / "assets", other / "convae" / "assets")
    (other / "convae" / "assets" / "ae_denoise.pt").write_bytes(b"not the bundle's weights")
    with pytest.raises(SystemExit, match="ae_denoise.pt"):
        gpu.restore_assets(stripped, tmp_path / "refused.whl", root=other)


def test_the_gpu_runs_variants_each_replace_one_line_of_the_reference_answer():
    gpu = load_tool("gpu_student_run")
    for variant in gpu.CPU_NOISE.values():
        path = REPO / "source" / variant.assignment / f"{variant.notebooks[0]}.ipynb"
        answer = notebooks.cells_by_id(notebooks.read(path))[variant.answer].source
        assert len(gpu.NOISE_LINE.findall(answer)) == 1, (variant, answer)
