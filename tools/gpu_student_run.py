"""The seven notebooks as a student runs them, on a CUDA machine: ``prepare`` here, ``run`` there.

``prepare`` (this checkout's venv) fills ``.gpu/`` (git-ignored through ``.git/info/exclude``):

- ``answered/``: the student bundle's notebooks (``dist/``) with every answer cell replaced by the
  reference solution, as a student would have typed it;
- one folder per variant of ``CPU_NOISE``: the notebooks that use one answer again, with that
  answer drawing its noise without ``device=`` (``reparameterize`` as ``torch.randn(mu.shape)``,
  and with ``generator=generator, dtype=mu.dtype``; ``add_noise`` likewise);
- ``bundle/``: the bundle's ``convae`` wheel (build the bundle first) without its assets, which
  ``run`` puts back from the checkout after checking each against the wheel's RECORD;
- ``wheels/``: the Jupyter packages a kernel needs that the device image lacks (it has torch,
  numpy, matplotlib, safetensors and tqdm of its own);
- ``data/``: Fashion-MNIST's four files (the Debian package's), since the device has no network.

Every notebook ends with one more cell that prints whether CUDA was there and how much memory
the kernel took on it, so a notebook that ran on the CPU cannot pass for one that ran on the GPU.

``run`` (the device's own ``python3``, stdlib only) installs those wheels and the bundle's wheel
into ``/tmp/site``, copies the notebooks to ``/tmp/student`` (nothing is read from the checkout
but ``tests/student_runner.py`` and the wheel's assets, each checked against the wheel), runs
every notebook in full (no ``NBGRADER_EXECUTION``: a student's Restart & Run All) at once, one
kernel each, and writes ``summary.json`` and the reference answers' executed notebooks (for
their figures) to ``$OUT``.

    .venv/bin/python tools/gpu_student_run.py prepare
    # on the device machine, carrying .gpu:
    python3 tools/gpu_student_run.py run .gpu
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parents[1]
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
WHEEL_PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
# What a kernel and nbclient import beyond the device image (debugpy and jedi are optional to
# ipykernel and IPython and are left out for the tree's size limit), at the bundle's versions.
KERNEL_PACKAGES = (
    "nbformat", "nbclient", "jupyter_client", "jupyter_core", "ipykernel", "ipython",
    "ipython_pygments_lexers", "traitlets", "pyzmq", "tornado", "comm", "matplotlib-inline",
    "nest-asyncio2", "platformdirs", "fastjsonschema", "jsonschema", "jsonschema-specifications",
    "referencing", "rpds-py", "pexpect", "ptyprocess", "prompt_toolkit", "wcwidth", "stack-data",
    "asttokens", "executing", "pure_eval",
)  # fmt: skip


class Variant(NamedTuple):
    """An answer cell rewritten to draw its noise on the CPU, and the notebooks that use it."""

    assignment: str
    notebooks: tuple[str, ...]  # the first holds the answer cell
    answer: str
    line: str  # replaces the reference's line that draws the noise


CPU_NOISE = {
    "randn_plain": Variant(
        "ps3", ("vae_theory", "vae_models"), "reparameterize", "eps = torch.randn(mu.shape)"
    ),
    "randn_cpu_generator": Variant(
        "ps3",
        ("vae_theory", "vae_models"),
        "reparameterize",
        "eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype)",
    ),
    "add_noise_cpu": Variant(
        "ps2",
        ("conv_autoencoders",),
        "add_noise",
        "noise = torch.randn(x.shape, generator=generator, dtype=x.dtype)",
    ),
}
NOISE_LINE = re.compile(r"^ *(eps|noise) = torch\.randn\([^\n]*\)$", re.M)
PROBE = (
    "import json as _json, torch as _torch\n"
    "print('GPU-PROBE', _json.dumps({'cuda': _torch.cuda.is_available(), 'max_allocated': "
    "_torch.cuda.max_memory_allocated() if _torch.cuda.is_available() else 0}))"
)
CELL_TIMEOUT = 300
ASSETS = "convae/assets/"


# --- prepare (here, with the checkout) ------------------------------------------------------


def prepare(dest: Path) -> None:
    import nbformat

    from convae import course, notebooks

    if dest.exists():
        shutil.rmtree(dest)
    answered = dest / "answered"
    for assignment in course.assignments(REPO):
        shutil.copytree(REPO / "dist" / assignment, answered / assignment)
    for path in sorted(answered.glob("*/*.ipynb")):
        nb = course.answered(path, REPO / "source" / path.parent.name / path.name, course.SOLUTION)
        nb.cells.append(nbformat.v4.new_code_cell(PROBE))
        notebooks.write(nb, path)
    for folder, variant in CPU_NOISE.items():
        for name in variant.notebooks:
            target = dest / folder / variant.assignment / f"{name}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(answered / variant.assignment / f"{name}.ipynb", target)
        path = dest / folder / variant.assignment / f"{variant.notebooks[0]}.ipynb"
        nb = notebooks.read(path)
        cell = notebooks.cells_by_id(nb)[variant.answer]
        cell.source, count = NOISE_LINE.subn(f"    {variant.line}", cell.source)
        assert count == 1, cell.source
        notebooks.write(nb, path)
    shutil.copytree(FASHION_MNIST, dest / "data" / "fashion_mnist")
    download_wheels(dest / "wheels")
    (wheel,) = (REPO / "dist").glob("convae-*.whl")  # dist/ is git-ignored: it travels in .gpu
    strip_assets(wheel, dest / "bundle" / wheel.name)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"{dest}: {size / 2**20:.1f} MiB")


def strip_assets(wheel: Path, stripped: Path) -> None:
    """The bundle's wheel without its assets (the weights and the data subset), which the checkout
    also holds: the tree that travels to the device may not exceed 64 MiB."""
    stripped.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(stripped, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            if not info.filename.startswith(ASSETS):
                out.writestr(info, src.read(info))


def kernel_wheels(requirements: Path) -> list[str]:
    """``KERNEL_PACKAGES`` pinned as the bundle's ``requirements.txt`` pins them."""
    from convae import bundle

    lines = [line for line in requirements.read_text().splitlines() if "==" in line]
    pins = {bundle.canonical(line.split("==")[0]): line for line in lines}
    return [pins[bundle.canonical(name)] for name in KERNEL_PACKAGES]


def download_wheels(folder: Path) -> None:
    platforms = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
    wheels = kernel_wheels(REPO / "dist" / "requirements.txt")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
         "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", folder, *wheels],
        check=True,
    )  # fmt: skip


# --- run (on the device, stdlib only) -------------------------------------------------------


def record_digest(data: bytes) -> str:
    """A file's hash as a wheel's RECORD writes it."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def restore_assets(stripped: Path, wheel: Path, root: Path = REPO) -> int:
    """The bundle's wheel again: each asset file taken from the checkout only if its hash is the
    one in the wheel's RECORD, so the installed files are the students' to the byte."""
    with zipfile.ZipFile(stripped) as src, zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as out:
        (record_name,) = [n for n in src.namelist() if n.endswith(".dist-info/RECORD")]
        record = {row[0]: row[1] for row in csv.reader(io.StringIO(src.read(record_name).decode())) if row}
        for info in src.infolist():
            out.writestr(info, src.read(info))
        assets = [name for name in record if name.startswith(ASSETS)]
        for name in assets:
            data = (root / name).read_bytes()
            if record_digest(data) != record[name]:
                raise SystemExit(f"{name} in the checkout is not the bundle's: rebuild the bundle")
            out.writestr(name, data)
    return len(assets)


def install(prepared: Path, site: Path) -> dict:
    (stripped,) = prepared.glob("bundle/convae-*.whl")
    wheel = Path("/tmp/bundle") / stripped.name
    wheel.parent.mkdir(exist_ok=True)
    print(f"{wheel.name}: {restore_assets(stripped, wheel)} assets checked against its RECORD", flush=True)
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    subprocess.run([*pip, "--target", site, wheel, *sorted(prepared.glob("wheels/*.whl"))], check=True)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("NBGRADER_EXECUTION", None)
    return env


def describe(env: dict) -> dict:
    code = (
        "import json, sys, torch, convae, convae.training as t\n"
        "print(json.dumps({'python': sys.version.split()[0], 'torch': torch.__version__,"
        " 'cuda': torch.cuda.is_available(), 'gpu': torch.cuda.get_device_name(0) if"
        " torch.cuda.is_available() else None, 'convae': convae.__file__,"
        " 'pick_device': str(t.pick_device())}))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd="/tmp")
    return json.loads(proc.stdout) if proc.returncode == 0 else {"error": proc.stderr[-2000:]}


def run_notebook(runner: Path, path: Path, env: dict) -> dict:
    out = path.with_suffix(".executed.ipynb")
    cmd = [sys.executable, runner, path, out, str(CELL_TIMEOUT)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=path.parent, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"wall": wall, "runner_error": proc.stderr[-3000:]}
    summary = json.loads(proc.stdout)
    executed = json.loads(out.read_text())
    return {"wall": wall, **summarise(summary, executed)}


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def text(value: str | list) -> str:
    """A notebook file's multiline string: one string, or the list of its lines."""
    return value if isinstance(value, str) else "".join(value)


def summarise(summary: dict, executed: dict) -> dict:
    code_cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    errors = []
    for cell, info in zip(code_cells, summary["cells"], strict=True):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                trace = ANSI.sub("", "\n".join(output.get("traceback", [])))
                errors.append(
                    {
                        "grade_id": info["grade_id"],
                        "ename": output["ename"],
                        "evalue": text(output["evalue"])[:500],
                        "traceback_tail": trace[-1500:],
                    }
                )
    probe = "".join(text(o.get("text", "")) for o in code_cells[-1].get("outputs", []))
    found = re.search(r"GPU-PROBE (\{.*\})", probe)
    return {
        "seconds": round(summary["seconds"], 1),
        "code_cells": len(code_cells),
        "images": sum(c["images"] for c in summary["cells"]),
        "errors": errors,
        "probe": json.loads(found.group(1)) if found else None,
    }


def run(prepared: Path, out: Path) -> None:
    prepared = prepared.resolve()
    student = Path("/tmp/student")
    shutil.rmtree(student, ignore_errors=True)
    for folder in ("answered", *CPU_NOISE):
        shutil.copytree(prepared / folder, student / folder)
    shutil.copytree(prepared / "data", Path("/tmp/data"), dirs_exist_ok=True)
    runner = Path("/tmp/student_runner.py")
    shutil.copy2(REPO / "tests" / "student_runner.py", runner)
    env = {**install(prepared, Path("/tmp/site")), "CONVAE_DATA": "/tmp/data", "HOME": "/tmp/home"}
    out.mkdir(parents=True, exist_ok=True)
    report = {"machine": describe(env), "notebooks": {}}
    print(json.dumps(report["machine"]), flush=True)
    # The variants' models notebook reads its own folder's theory notebook (sibling_notebook).
    paths = sorted(student.glob("*/*/*.ipynb"))
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        futures = {pool.submit(run_notebook, runner, p, env): p for p in paths}
        for future in as_completed(futures):
            key = str(futures[future].relative_to(student))
            report["notebooks"][key] = future.result()
            print(f"{key:40} {line(report['notebooks'][key])}", flush=True)
            # Written after each notebook, so a run stopped at its time limit still reports.
            (out / "summary.json").write_text(json.dumps(report, indent=1))
    # The reference answers' executed notebooks come back too, for their figures.
    for executed in sorted(student.glob("answered/*/*.executed.ipynb")):
        shutil.copy2(executed, out / f"{executed.parent.name}-{executed.name}")


def line(result: dict) -> str:
    if "runner_error" in result:
        return "RUNNER FAILED " + result["runner_error"][-300:]
    errors = ", ".join(f"{e['grade_id']}: {e['ename']}: {e['evalue'][:160]}" for e in result["errors"])
    return (
        f"{result['seconds']:6.1f} s  {result['code_cells']:3} cells  {result['images']:3} images  "
        f"probe {result['probe']}  errors [{errors}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    sub.add_parser("prepare").add_argument("dest", nargs="?", type=Path, default=REPO / ".gpu")
    runs = sub.add_parser("run")
    runs.add_argument("prepared", type=Path)
    runs.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "/tmp/gpu-out")))
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.dest)
    else:
        run(args.prepared, args.out)


if __name__ == "__main__":
    main()
