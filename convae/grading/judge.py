"""The judge: the process that runs every graded test cell and computes its verdict.

It runs instructor code only. A test cell's names resolve, in order, to what the cell and the
notebook's ``imports`` cell define here, to Python's builtins, and, for the names the notebook's
answer cells define (their ``grade_id``), to the student's kernel through ``proxy`` (values, or
opaque handles). So the test computes its references with the judge's own torch, on inputs it
built and seeded itself, and compares plain values; the student's process sees only the
arguments of the calls made to it.

Processes: ``python -m convae.grading.judge SOCKET`` is a fork server that imports torch once and
lives as long as the process that started it (a grading process, whose runs share it, or a
cluster worker); each grading worker connects and gets a fresh forked judge for its notebooks
(``JudgeClient``).
The server lives outside every sandbox; a sandboxed kernel cannot see its processes (its own PID
namespace), and reaches a judge only through the one socket of a test cell, where everything it
sends is read as data within limits. Neither the server nor its judges are dumpable.

A verdict is plain data: passed, or the error to show (the check's message, the student's
exception, or a fault of the student's side: a hang, a dead kernel, garbage on the channel).
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from convae.grading import proxy, wire

# What the notebooks' imports cells import, loaded once in the server rather than in every judge.
PRELOAD = (
    "numpy",
    "torch",
    "matplotlib",
    "safetensors.torch",
    "convae.grading.checks",
    "convae.data",
    "convae.training",
    "convae.plotting",
    "convae.pretrained",
    "convae.summary",
    "convae.notebooks",
)
CONNECT_SECONDS = 30  # from a test's start until the kernel's agent must have connected
EVALUE_CHARS = 2000
SERVER_SOCKET = "judge.sock"


@dataclass(frozen=True)
class Verdict:
    passed: bool
    ename: str = ""
    evalue: str = ""
    fault: str | None = None  # a problem on the student's side of the channel, for the report
    test_error: str | None = None  # the test cell itself failed (an instructor's bug), for the report
    calls: int = 0

    def outputs(self) -> list[dict]:
        """The graded test cell's outputs: nothing, or one error carrying the message."""
        if self.passed:
            return []
        return [
            {
                "output_type": "error",
                "ename": self.ename,
                "evalue": self.evalue,
                "traceback": [f"{self.ename}: {self.evalue}"],
            }
        ]


def clean_text(text: str, limit: int = EVALUE_CHARS) -> str:
    """Printable text of at most ``limit`` characters (messages may carry the student's strings)."""
    kept = "".join(ch if ch.isprintable() or ch in "\n\t" else "?" for ch in str(text)[: limit + 1])
    return kept if len(kept) <= limit else kept[:limit] + " [...]"


class TestNamespace(dict):
    """A test cell's globals: its own names, the notebook's imports, builtins, then the student's."""

    def __init__(self, student_names):
        super().__init__(__name__=proxy.JUDGE_MODULE, __builtins__=builtins)
        self.student_names = frozenset(student_names)
        self.session: proxy.Session | None = None

    def __missing__(self, name):
        if name in self.student_names and self.session is not None and not hasattr(builtins, name):
            return self.session.request("lookup", name=name)
        raise KeyError(name)


class NotebookJudge:
    """Judges the test cells of one notebook, in order, in one namespace."""

    def __init__(self, imports: str, student_names):
        self.namespace = TestNamespace(student_names)
        self.last_error: BaseException | None = None  # what the last test raised, for the validity harness
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exec(compile(imports, "<imports>", "exec"), self.namespace)

    def run(
        self, source: str, cell_id: str, agent: socket.socket, deadline: float, call_seconds: float
    ) -> Verdict:
        session = proxy.Session(agent, deadline, call_seconds)
        self.namespace.session = session
        error = None
        try:
            with (
                proxy.active(session),
                open(os.devnull, "w") as sink,
                contextlib.redirect_stdout(sink),
                contextlib.redirect_stderr(sink),
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("ignore")  # the judge's warnings are not the student's
                exec(compile(source, f"<test {cell_id}>", "exec"), self.namespace)
        except BaseException as raised:  # noqa: BLE001 -- every failure is a verdict
            error = raised
        finally:
            self.namespace.session = None
            session.finish()
        self.last_error = error
        return verdict_from(error, session)


def verdict_from(error: BaseException | None, session: proxy.Session) -> Verdict:
    calls = session.calls
    if session.fault is not None:
        fault = session.fault
        return Verdict(False, fault.ename, clean_text(fault), fault=clean_text(fault), calls=calls)
    if error is None:
        return Verdict(True, calls=calls)
    if isinstance(error, proxy.StudentError):
        return Verdict(False, clean_text(error.type_name, 100), clean_text(error.message), calls=calls)
    ename, evalue = type(error).__name__, clean_text(error)
    if isinstance(error, proxy.OpaqueValueError):
        ename = "TypeError"
    test_error = None
    if isinstance(error, (SyntaxError, NameError, ImportError)):
        test_error = f"{ename}: {evalue}"
    return Verdict(False, ename, evalue, test_error=test_error, calls=calls)


def no_connection(reason: str) -> Verdict:
    message = f"the kernel did not answer the grader ({reason})"
    return Verdict(False, "GradingChannelError", message, fault=message)


def accept_agent(listener: socket.socket, control: socket.socket, token: str, deadline: float):
    """The agent's connection, once it has said its token; None if the worker aborts or time runs out."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([listener, control], [], [], left)
        if control in ready:
            return None  # the worker saw the kernel finish or die without connecting
        if listener in ready:
            conn, _ = listener.accept()
            try:
                conn.settimeout(min(5.0, max(left, 0.1)))
                hello, _ = wire.receive_frame(conn)
            except (OSError, EOFError, wire.ProtocolError):
                conn.close()
                continue
            if hello.get("hello") == token:
                return conn
            conn.close()


# --- one judge per worker connection -------------------------------------------------------------


def serve_worker(conn: socket.socket) -> None:
    """Answer one grading worker: a notebook to set up, then its test cells, one at a time."""
    judge = None
    while True:
        try:
            request, _ = wire.receive_frame(conn)
        except (EOFError, OSError):
            return
        op = request.get("op")
        if op == "notebook":
            try:
                judge = NotebookJudge(request["imports"], request["student_names"])
                reply = {"ok": True}
            except Exception as error:  # noqa: BLE001 -- an instructor's imports cell is broken
                reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
            wire.send_frame(conn, reply)
        elif op == "test":
            _, fds, _, _ = socket.recv_fds(conn, 1, 1)
            listener = socket.socket(fileno=fds[0]) if fds else None
            verdict = run_one_test(judge, request, listener, conn)
            wire.send_frame(conn, asdict(verdict))
        # anything else (a late abort) is ignored


def run_one_test(judge, request: dict, listener, control) -> Verdict:
    if judge is None or listener is None:
        return Verdict(False, "GradingError", "the judge was not set up", test_error="no notebook set up")
    start = time.monotonic()
    deadline = start + float(request["cell_seconds"])
    with listener:
        agent = accept_agent(listener, control, request["token"], min(deadline, start + CONNECT_SECONDS))
        with contextlib.suppress(OSError):
            os.unlink(request["agent_socket"])
    if agent is None:
        return no_connection("it never connected: was the grader's request replaced or skipped?")
    return judge.run(request["source"], request["cell_id"], agent, deadline, float(request["call_seconds"]))


# --- the fork server ------------------------------------------------------------------------------


def set_dumpable(dumpable: bool) -> None:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(4, int(dumpable), 0, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")


def preload() -> None:
    os.environ["MPLBACKEND"] = "Agg"
    for name in PRELOAD:
        __import__(name)
    import matplotlib.pyplot  # noqa: F401 -- notebooks' imports cells import it
    import torch

    torch.set_num_threads(1)  # a judge's own arithmetic is small; the kernels need the cores


def serve(path: Path) -> None:
    parent = os.getppid()
    set_dumpable(False)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    listener.bind(str(path))
    listener.listen(64)
    preload()
    children: set[int] = set()
    try:
        while os.getppid() == parent:  # the server lives as long as the grading run that started it
            ready, _, _ = select.select([listener], [], [], 0.5)
            if ready:
                conn, _ = listener.accept()
                pid = os.fork()
                if pid == 0:
                    listener.close()
                    try:
                        serve_worker(conn)
                    finally:
                        os._exit(0)
                conn.close()
                children.add(pid)
            children -= reap(children)
    finally:
        path.unlink(missing_ok=True)


def reap(children: set[int]) -> set[int]:
    done = set()
    for pid in children:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                done.add(pid)
    return done


class JudgeServer:
    """A judge fork server started by this process (``process_server``, or a cluster worker's)."""

    def __init__(self):
        self.folder = Path(tempfile.mkdtemp(prefix="convae-judge-"))  # 0700: private to the grader
        self.path = self.folder / SERVER_SOCKET
        env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "convae.grading.judge", str(self.path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.folder / "judge.log", "wb"),  # noqa: SIM115 -- the server's whole life
            env=env,
            start_new_session=True,
        )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the server and its judges
        self.process.wait()
        for child in self.folder.iterdir():
            child.unlink()
        self.folder.rmdir()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


_PROCESS_SERVER: list[JudgeServer] = []
_PROCESS_SERVER_LOCK = threading.Lock()


def process_server() -> JudgeServer:
    """This process's judge server: started by its first grading run and shared by the later ones
    (its judges are fresh forks, so nothing passes from one run to the next), started again where
    it died, stopped when the process exits. It saves a server's imports (1.4 s) per run."""
    with _PROCESS_SERVER_LOCK:
        if _PROCESS_SERVER and _PROCESS_SERVER[0].process.poll() is not None:
            stop_process_server()  # it died: its folder goes, a new one starts
        if not _PROCESS_SERVER:
            _PROCESS_SERVER.append(JudgeServer())
            atexit.register(stop_process_server)
        return _PROCESS_SERVER[0]


def stop_process_server() -> None:
    if _PROCESS_SERVER:
        _PROCESS_SERVER.pop().stop()


class JudgeClient:
    """A grading worker's connection to its judge (one forked judge per client)."""

    def __init__(self, path: Path, wait_seconds: float = 20):
        deadline = time.monotonic() + wait_seconds
        while True:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                self.sock.close()
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the judge server at {path} does not answer") from None
                time.sleep(0.05)

    def notebook(self, imports: str, student_names) -> None:
        wire.send_frame(
            self.sock, {"op": "notebook", "imports": imports, "student_names": sorted(student_names)}
        )
        reply, _ = wire.receive_frame(self.sock)
        if not reply.get("ok"):
            raise RuntimeError(f"the judge could not run the notebook's imports cell: {reply.get('error')}")

    def test(self, *, cell_id, source, listener, agent_socket, token, cell_seconds, call_seconds) -> Verdict:
        request = {
            "op": "test",
            "cell_id": cell_id,
            "source": source,
            "agent_socket": agent_socket,
            "token": token,
            "cell_seconds": cell_seconds,
            "call_seconds": call_seconds,
        }
        wire.send_frame(self.sock, request)
        socket.send_fds(self.sock, [b"L"], [listener.fileno()])
        self.sock.settimeout(cell_seconds + 60)  # a judge stuck in a test's own code
        try:
            reply, _ = wire.receive_frame(self.sock)
        finally:
            self.sock.settimeout(None)
        return Verdict(**{k: reply[k] for k in Verdict.__dataclass_fields__ if k in reply})

    def abort(self) -> None:
        """The kernel finished without connecting: stop waiting for it."""
        with contextlib.suppress(OSError):
            wire.send_frame(self.sock, {"op": "abort"})

    def close(self) -> None:
        self.sock.close()


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
