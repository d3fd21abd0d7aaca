"""nbgrader's execution step, with the judge: answers run in the kernel, verdicts in the judge.

``ResilientExecute`` replaces nbgrader's ``Execute`` (``nbgrader_config.py``):
- every cell but the graded test cells runs in the student's (sandboxed) kernel, as usual;
- a graded test cell never reaches the kernel. The judge runs its source, hidden tests
  included, while the kernel runs one call of ``agent.serve`` that answers the judge's requests.
  The cell's outputs are then written from the judge's verdict only: nothing, or one error
  carrying the check's message. Whatever the kernel printed or returned meanwhile is dropped, so
  partial credit cannot be forged and no output of the student's can reach a graded cell;
- a dead or stuck kernel, or one that sends a message the grader cannot read (a forged
  signature), costs only the cell it happened in: a fresh kernel replays the cells
  before it (not the test cells) and grading goes on. Every such event, and every fault of the
  student's side of the judge's channel, is written to ``CONVAE_GRADING_FLAGS`` for the report;
- a notebook has a time budget (``notebook_seconds``): no cell may run past what is left of it,
  and once it is spent the remaining cells are not run. They fail, saying why, and are flagged,
  so that a submission that hangs in every cell costs its budget, not cells x the cell timeout.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import math
import os
import secrets
import socket
import tempfile
import time
import zlib
from pathlib import Path

import nbformat
from jupyter_client import AsyncKernelManager
from jupyter_client.session import Session
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbgrader.preprocessors import Execute
from traitlets import Integer, default

from convae import notebooks
from convae.grading import judge, sandbox, wire

JUDGE_SOCKET = "CONVAE_JUDGE_SOCKET"  # the class's judge server, set by the pipeline
FLAGS_FILE = sandbox.FLAGS_FILE
SERVE = "__import__('convae.grading.agent', fromlist=['serve']).serve({path!r}, {token!r}, globals(), {seed})"
GRACE_SECONDS = 2  # for the kernel to finish serving once the judge has its verdict
# nbclient's own limit for the serving cell comes this much after the judge's, so that a hang is
# the judge's timeout (and interrupt), not an interrupt the judge mistakes for a dead kernel.
SERVING_EXTRA_SECONDS = 15
SERVING = "convae_serving"  # metadata of the cell that serves a test cell in the kernel


class KernelMessageUnreadable(ValueError):
    """A message on the kernel's channels that jupyter_client cannot read (a forged signature, a
    broken frame): the student's code holds the kernel's sockets and key, and may send anything."""


class GuardedSession(Session):
    """The kernel channels' session: a message it cannot read raises KernelMessageUnreadable, a
    ValueError as jupyter_client's own, so that only such messages cost a cell, not any ValueError."""

    def feed_identities(self, msg_list, copy=True):
        try:
            return super().feed_identities(msg_list, copy)
        except Exception as error:
            raise KernelMessageUnreadable(str(error)) from error

    def deserialize(self, msg_list, content=True, copy=True):
        try:
            return super().deserialize(msg_list, content, copy)
        except Exception as error:
            raise KernelMessageUnreadable(str(error)) from error


class GuardedKernelManager(AsyncKernelManager):
    @default("session")
    def _guarded_session(self) -> Session:
        return GuardedSession(parent=self)


# What a cell's run can end in when the kernel is gone or cannot be trusted to go on: a dead
# kernel, a cell that could not be interrupted, or a message the grader cannot read.
KERNEL_LOST = (DeadKernelError, CellTimeoutError, KernelMessageUnreadable)
# The slowest honest notebook in grading mode (ps2 conv_autoencoders, the complete example
# student) took 24 s here, two jobs at a time on a busy 2-core machine; five minutes leaves room
# for a machine ten times slower.
DEFAULT_NOTEBOOK_SECONDS = 300


class ResilientExecute(Execute):
    """Execute with the judge; a dead kernel costs only the cell that killed it."""

    call_seconds = Integer(
        None, allow_none=True, help="limit for one call into the student's code (default: the cell timeout)"
    ).tag(config=True)
    notebook_seconds = Integer(
        DEFAULT_NOTEBOOK_SECONDS,
        allow_none=True,
        help="time budget of one notebook; once spent, its remaining cells are not run (0: none)",
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", GuardedKernelManager)
        super().__init__(*args, **kwargs)

    def preprocess(self, nb, resources=None, km=None):
        self._skip_on_replay = set()
        self._judge = None
        self._notebook_name = (resources or {}).get("unique_key", "notebook")
        self._deadline = time.monotonic() + self.notebook_seconds if self.notebook_seconds else None
        self._not_run = []
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if self._judge is not None:
                self._judge.close()
            if self._not_run:
                self.flag(
                    f"time budget of {self.notebook_seconds} s spent: {len(self._not_run)} cells not run "
                    f"({', '.join(self._not_run[:5])}{', ...' if len(self._not_run) > 5 else ''})"
                )

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and self.budget_spent():
            cell.outputs = [budget_spent_output(self.notebook_seconds)]
            cell.execution_count = None
            self._not_run.append(notebooks.grade_id(cell) or f"cell {index}")
            return cell, resources
        if notebooks.is_test_cell(cell):
            self.judge_cell(cell, index)
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except KERNEL_LOST as error:
            explained = lost_kernel_output(error)
            cell.outputs.append(explained)
            self.flag(f"{notebooks.grade_id(cell) or f'cell {index}'}: {explained.evalue}")
            self._skip_on_replay.add(index)
            self._restart_and_replay(index)
            return cell, self.resources
        if any(o.get("ename") == "CellTimeoutError" for o in cell.get("outputs", [])):
            self._skip_on_replay.add(index)
        return cell, resources

    # --- the judge ---------------------------------------------------------------------------
    def judge_cell(self, cell, index) -> None:
        cell_id = notebooks.grade_id(cell)
        verdict, lost = run_sync(self._judge_cell_async)(cell, index)
        if lost is not None:
            lost_output = lost_kernel_output(lost)
            verdict = judge.Verdict(False, lost_output.ename, lost_output.evalue, fault="kernel lost")
        cell.outputs = [nbformat.from_dict(output) for output in verdict.outputs()]
        cell.execution_count = None
        if verdict.fault:
            self.flag(f"{cell_id}: {verdict.ename}: {verdict.evalue}")
        if verdict.test_error:
            self.flag(f"{cell_id}: the test cell itself failed ({verdict.test_error}): tell the instructor")
        if lost is not None:
            self._restart_and_replay(index)

    async def _judge_cell_async(self, cell, index):
        """Run the test in the judge while the kernel serves it; returns (verdict, lost kernel error)."""
        client = self.judge_client()
        runtime = Path(os.environ.get(sandbox.RUNTIME_DIR) or tempfile.gettempdir())
        path = runtime / f"judge-{secrets.token_hex(6)}.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        token = secrets.token_hex(16)
        cell_seconds = float(self._get_timeout(cell) or 120)
        run_test = functools.partial(
            client.test,
            cell_id=notebooks.grade_id(cell),
            source=cell.source,
            listener=listener,
            agent_socket=str(path),
            token=token,
            cell_seconds=cell_seconds,
            call_seconds=float(self.call_seconds or cell_seconds),
        )
        seed = zlib.crc32(notebooks.grade_id(cell).encode())
        serving = nbformat.v4.new_code_cell(SERVE.format(path=str(path), token=token, seed=seed))
        serving.metadata[SERVING] = True
        verdict_future = asyncio.get_running_loop().run_in_executor(None, run_test)
        kernel_task = asyncio.ensure_future(self.async_execute_cell(serving, index, store_history=False))
        lost = None
        try:
            await asyncio.wait({verdict_future, kernel_task}, return_when=asyncio.FIRST_COMPLETED)
            if kernel_task.done() and not verdict_future.done():
                client.abort()  # the kernel finished (or died) without being asked anything
            try:
                verdict = await verdict_future
            except (OSError, EOFError, ValueError, wire.ProtocolError) as error:  # the judge failed: our bug
                self._judge = None  # the next test cell gets a fresh judge
                client.close()
                message = f"the grader's judge failed ({type(error).__name__}: {error})"
                verdict = judge.Verdict(False, "GradingError", message, test_error=message)
            if not kernel_task.done():
                done, _ = await asyncio.wait({kernel_task}, timeout=GRACE_SECONDS)
                if not done:  # still inside the student's code, e.g. after a timeout
                    await ensure_async(self.km.interrupt_kernel())
            try:
                await kernel_task  # bounded by nbclient's own cell timeout
            except KERNEL_LOST as error:
                lost = error
        finally:
            listener.close()
            path.unlink(missing_ok=True)
            self.nb.cells[index] = cell  # nbclient put the serving cell in its place
        return verdict, lost

    def _get_timeout(self, cell):
        timeout = super()._get_timeout(cell)
        left = self.budget_left()
        if left is not None:  # no cell runs past the notebook's budget
            timeout = max(1, math.ceil(min(timeout or left, left)))
        if timeout and cell is not None and cell.get("metadata", {}).get(SERVING):
            return timeout + SERVING_EXTRA_SECONDS
        return timeout

    # --- the notebook's time budget ---------------------------------------------------------
    def budget_left(self) -> float | None:
        deadline = getattr(self, "_deadline", None)
        return None if deadline is None else deadline - time.monotonic()

    def budget_spent(self) -> bool:
        left = self.budget_left()
        return left is not None and left <= 0

    def judge_client(self) -> judge.JudgeClient:
        """This notebook's judge, set up with its imports cell and the names its answers define."""
        if self._judge is None:
            server = os.environ.get(JUDGE_SOCKET) or str(judge.process_server().path)
            self._judge = judge.JudgeClient(Path(server))
            imports = next((c.source for c in self.nb.cells if notebooks.grade_id(c) == "imports"), "")
            names = [notebooks.grade_id(c) for c in self.nb.cells if notebooks.is_answer_cell(c)]
            self._judge.notebook(imports, names)
        return self._judge

    # --- dead kernels -------------------------------------------------------------------------
    def _restart_and_replay(self, index):
        if self.budget_spent():  # no cell runs after it anyway
            return
        run_sync(self.km.restart_kernel)(now=True)
        self.kc.stop_channels()
        self.kc = self.km.client()
        self.kc.start_channels()
        run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
        for earlier, cell in enumerate(self.nb.cells[:index]):
            if cell.cell_type != "code" or notebooks.is_test_cell(cell) or earlier in self._skip_on_replay:
                continue
            try:
                self.execute_cell(copy.deepcopy(cell), earlier, store_history=False)
            except KERNEL_LOST:
                self._skip_on_replay.add(earlier)
                return self._restart_and_replay(index)
            finally:
                self.nb.cells[earlier] = cell  # keep the first run's outputs

    def flag(self, text: str) -> None:
        path = os.environ.get(FLAGS_FILE)
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(f"{self._notebook_name}: {text}") + "\n")


def lost_kernel_output(error) -> nbformat.NotebookNode:
    if isinstance(error, CellTimeoutError):
        ename, evalue = "CellTimeoutError", "the cell did not finish in time and could not be interrupted"
    elif isinstance(error, KernelMessageUnreadable):
        ename = "KernelMessageUnreadable"
        evalue = f"the kernel sent a message the grader cannot read ({str(error)[:60]})"
    else:
        ename, evalue = (
            "KernelDied",
            "the kernel died while running this cell (exit, crash, or a resource limit)",
        )
    evalue += "; grading went on in a fresh kernel"
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def budget_spent_output(seconds: int) -> nbformat.NotebookNode:
    ename = "TimeBudgetSpent"
    evalue = f"this notebook's time budget ({seconds} s) was spent before this cell could run"
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def read_flags(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
