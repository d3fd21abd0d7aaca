"""The grading kernel and its fork server (``convae.grading.sandbox``, ``convae.grading.kernel_server``).

Kernels are started and killed through jupyter_client, as nbgrader does, with and without the
sandbox. What must hold: each kernel is a fresh fork (nothing one kernel does reaches the
next), a dead kernel is seen dead, a killed launcher takes its kernel down, and a kernel can
neither change the server nor leave processes behind for the next one.
"""

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO, require_system
from jupyter_client import KernelManager

from convae.grading import limits, pipeline, sandbox


@dataclass
class Job:
    root: Path
    workdir: Path
    runtime: Path
    env: dict


@pytest.fixture
def make_job(tmp_path, monkeypatch):
    """A grading job's folders and kernel environment; its server is stopped afterwards."""
    runtimes = []

    def make(sandboxed: bool) -> Job:
        if sandboxed:
            require_system("bubblewrap")
        root = tmp_path / "course"
        workdir = root / "autograded" / "student" / "ps1"
        runtime = Path(tempfile.mkdtemp(prefix="convae-test-"))  # short, as Unix socket paths must be
        runtimes.append(runtime)
        workdir.mkdir(parents=True)
        (root / "gradebook.db").write_text("hidden tests")
        monkeypatch.setenv("JUPYTER_PATH", str(pipeline.install_grading_kernel(root)))
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime), **{sandbox.RUNTIME_DIR: str(runtime)})
        if sandboxed:
            env["CONVAE_SANDBOX_HIDE"] = str(root)
        return Job(root, workdir, runtime, env)

    yield make
    for runtime in runtimes:
        sandbox.stop_server(runtime)
        shutil.rmtree(runtime)


@pytest.fixture(params=["unsandboxed", "sandboxed"])
def job(request, make_job):
    return make_job(request.param == "sandboxed")


@pytest.fixture
def sandboxed_job(make_job):
    return make_job(True)


def start(job):
    km = KernelManager(kernel_name=pipeline.GRADING_KERNEL, transport="ipc", ip=str(job.runtime / "kernel"))
    km.start_kernel(env=job.env, cwd=str(job.workdir))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


def run(kc, code: str) -> str:
    """What the cell prints, or its error as ``ename: evalue``."""
    printed = []

    def hook(msg):
        content = msg["content"]
        if msg["msg_type"] == "stream":
            printed.append(content["text"])
        elif msg["msg_type"] == "error":
            printed.append(f"{content['ename']}: {content['evalue']}")

    kc.execute_interactive(code, output_hook=hook, timeout=60)
    return "".join(printed).strip()


def stop(km, kc):
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def wait_until(condition, seconds=10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_each_kernel_is_a_fresh_fork_with_the_libraries_loaded(job):
    km, kc = start(job)
    loaded = "import sys\nprint('torch' in sys.modules, 'torch._dynamo' in sys.modules)"
    assert run(kc, loaded) == "True False"  # a job whose notebooks train gets torch._dynamo too
    assert run(kc, "import os\nprint(os.getcwd())") == str(job.workdir)
    run(kc, "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.left_by_the_first_kernel = 1")
    stop(km, kc)
    km, kc = start(job)
    assert run(kc, "import torch\nprint(hasattr(torch, 'left_by_the_first_kernel'))") == "False"
    assert run(kc, "print(torch.allclose(torch.zeros(1), torch.ones(1)))") == "False"
    assert run(kc, "import matplotlib\nprint(matplotlib.get_backend())").endswith("backend_inline")
    stop(km, kc)


def test_the_compiler_front_end_is_preloaded_for_jobs_whose_notebooks_train(sandboxed_job):
    """torch._dynamo costs 1.1-1.4 s to import: preloaded only where an optimiser step will need it."""
    from convae.grading import kernel_server, worker

    sandboxed_job.env[kernel_server.PRELOAD_TRAINING] = "1"
    km, kc = start(sandboxed_job)
    assert run(kc, "import sys\nprint('torch._dynamo' in sys.modules)") == "True"
    stop(km, kc)
    release = REPO / "release"
    assert [worker.trains(release / name) for name in ("ps1", "ps2", "ps3")] == [False, True, True]


def test_a_kernel_that_exits_is_seen_dead(job):
    km, kc = start(job)
    kc.execute("import os\nos._exit(3)")
    assert wait_until(lambda: not km.is_alive())
    stop(km, kc)


def test_a_killed_launcher_takes_its_kernel_down(job):
    km, kc = start(job)
    beat = job.runtime / "heartbeat"  # the runtime folder is the same inside the sandbox and out
    run(
        kc,
        "import threading, time, pathlib\n"
        "def _beat():\n"
        "    while True:\n"
        f"        pathlib.Path({str(beat)!r}).write_text(str(time.monotonic()))\n"
        "        time.sleep(0.02)\n"
        "threading.Thread(target=_beat, daemon=True).start()",
    )
    assert wait_until(beat.exists)
    os.killpg(km.provisioner.pid, signal.SIGKILL)  # as the kernel manager kills a stuck kernel
    time.sleep(1.0)
    last = beat.read_text()
    time.sleep(0.5)
    assert beat.read_text() == last, "the kernel outlived its launcher"
    stop(km, kc)


def test_the_server_stops_when_the_job_is_done(job):
    km, kc = start(job)
    stop(km, kc)
    sandbox.stop_server(job.runtime)
    assert wait_until(lambda: not (job.runtime / sandbox.SERVER_SOCKET).exists())


def test_sandboxed_kernels_cannot_change_the_server_or_leave_processes_behind(sandboxed_job):
    job = sandboxed_job  # the guards rely on the sandbox: no capabilities, its own PID namespace
    km, kc = start(job)
    opened = run(kc, "import os\nopen(f'/proc/{os.getppid()}/mem', 'r+b')")
    assert opened.startswith("PermissionError"), opened
    pid = run(kc, "import subprocess\nprint(subprocess.Popen(['sleep', '600'], start_new_session=True).pid)")
    stop(km, kc)
    km, kc = start(job)
    assert run(kc, f"import os\nprint(os.path.exists('/proc/{pid}'))") == "False"
    left = run(
        kc, "import subprocess\nprint(subprocess.Popen(['sleep', '613.25'], start_new_session=True).pid)"
    )
    assert left.isdigit() and wait_until(lambda: processes_running("613.25")), left  # left when the job ends
    stop(km, kc)
    sandbox.stop_server(job.runtime)
    assert wait_until(lambda: not processes_running("613.25")), "a process outlived the grading job"


def processes_running(argument: str) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and argument.encode() in (proc / "cmdline").read_bytes().split(b"\0"):
                return True
        except OSError:
            pass
    return False


def test_sandboxed_kernels_work_in_a_copy_of_the_submission_not_the_graded_folder(sandboxed_job, tmp_path):
    # nbgrader writes each graded notebook, hidden tests restored, into the autograded folder:
    # the next notebook's kernel must not find it there.
    job = sandboxed_job
    staged = tmp_path / "staged"
    staged.mkdir()
    (staged / "notes.txt").write_text("the student's own file")
    job.env["CONVAE_SUBMISSION_DIR"] = str(staged)
    km, kc = start(job)
    (job.workdir / "graded.ipynb").write_text("### BEGIN HIDDEN TESTS")  # as nbgrader writes it
    listing = run(kc, "import os\nprint(sorted(os.listdir('.')), os.getcwd())")
    assert listing == f"['notes.txt'] {job.workdir}", listing
    run(kc, "open('written.txt', 'w').write('x')")
    assert not (job.workdir / "written.txt").exists()
    stop(km, kc)


def test_sandboxed_kernels_cannot_unmount_what_hides_the_course(sandboxed_job):
    job = sandboxed_job
    km, kc = start(job)
    code = (
        "import ctypes, os, pathlib\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"print(libc.umount2({str(job.root)!r}.encode(), 2), end=' ')\n"  # MNT_DETACH
        f"print(pathlib.Path({str(job.root / 'gradebook.db')!r}).exists())"
    )
    assert run(kc, code) == "-1 False"
    stop(km, kc)


@pytest.fixture
def job_group():
    """A job's cgroups in every hierarchy this machine lets the tests create one in."""
    require_system("cgroups")
    usable, _ = limits.probe(limits.Limits())
    group = limits.JobGroup.create(
        f"test-{os.getpid()}-{time.monotonic_ns()}", limits.Limits(pids=128), usable
    )
    yield group
    group.close()


def cgroups_of_kernel(kc) -> str:
    return run(kc, "print(open('/proc/self/cgroup').read())")


def in_group(cgroups: str, group: limits.JobGroup) -> bool:
    """Whether a process whose /proc/self/cgroup reads ``cgroups`` is in every group of ``group``."""
    lines = cgroups.splitlines()
    return all(
        any(line.endswith(":/" + str(folder.relative_to(hierarchy.mount))) for line in lines)
        for hierarchy, folder in group.groups.items()
    )


def test_kernels_run_in_the_jobs_cgroups_and_so_does_a_server_started_again(job, job_group):
    # When the job's memory limit is reached the OOM killer may end the server itself: its kernel
    # dies with it, and the next kernel's launcher starts a new server, in the same groups.
    job.env.update(job_group.environment())
    km, kc = start(job)
    assert in_group(cgroups_of_kernel(kc), job_group), cgroups_of_kernel(kc)
    kc.execute("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")
    assert wait_until(lambda: not km.is_alive(), seconds=30)
    stop(km, kc)
    km, kc = start(job)
    assert in_group(cgroups_of_kernel(kc), job_group), cgroups_of_kernel(kc)
    stop(km, kc)
    sandbox.stop_server(job.runtime)
    usage = job_group.usage()
    assert usage.pids_peak > 0 and usage.pids_refused == 0, usage


def test_sandboxed_kernels_write_only_to_file_systems_with_a_size(sandboxed_job):
    job = sandboxed_job
    job.env.update({sandbox.TMP_SIZE: str(8 * 2**20), sandbox.SCRATCH_SIZE: str(4 * 2**20)})
    km, kc = start(job)
    code = (
        "import os\n"
        "def fill(folder):\n"
        "    written, fd = 0, os.open(os.path.join(folder, 'fill'), os.O_WRONLY | os.O_CREAT)\n"
        "    try:\n"
        "        while written < 64 * 2**20:\n"
        "            written += os.write(fd, b'x' * 2**20)\n"
        "    except OSError as error:\n"
        "        return written / 2**20, error.strerror\n"
        "    return written / 2**20, 'all written'\n"
        "print([fill(folder) for folder in ('/tmp', '/dev/shm', '.')])\n"
        f"for folder in ({str(job.root)!r}, '/dev'):\n"
        "    try:\n"
        "        open(os.path.join(folder, 'fill'), 'wb')\n"
        "    except OSError as error:\n"
        "        print(error.strerror)"
    )
    printed = run(kc, code).splitlines()
    filled = eval(printed[0])  # [(MiB written, why it stopped)] for /tmp, /dev/shm, the working copy
    assert [why for _, why in filled] == ["No space left on device"] * 3, printed
    for (written, _), size in zip(filled, (8, 8, 4), strict=True):
        assert size - 0.1 <= written <= size + 0.1, printed  # a few pages hold other files
    assert printed[1:] == ["Read-only file system", "Read-only file system"], printed
    stop(km, kc)


def test_each_sandboxed_kernel_starts_with_an_empty_tmp(sandboxed_job):
    # A student who fills /tmp in one notebook must leave room for the next kernel's connection file.
    job = sandboxed_job
    job.env[sandbox.TMP_SIZE] = str(4 * 2**20)
    km, kc = start(job)
    run(kc, "for d in ('/tmp', '/dev/shm'):\n    open(f'{d}/left', 'wb').write(b'x' * 2**20)")
    stop(km, kc)
    km, kc = start(job)
    assert (
        run(kc, "import os\nprint(os.path.exists('/tmp/left'), os.path.exists('/dev/shm/left'))")
        == "False False"
    )
    stop(km, kc)
