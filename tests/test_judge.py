"""The judge and its channel, attacked from the student's side, without nbgrader.

Each case runs "student" cells in a separate process (``student_side``), which then serves one
test cell through the real agent, and judges the test here, as grading does. A student's cell
may replace any part of the agent before it serves: that is how these cases forge replies,
send garbage, hang or die. What must hold: the verdict depends on values only, every fault
costs the test and is reported as a fault, and nothing the student's side sends can run code or
exhaust the judge.
"""

import json
import math
import socket
import struct

import numpy as np
import pytest
import torch
from validity_harness import judge_in_student_process

from convae.grading import proxy, wire

IMPORTS = "import math\nimport torch\nfrom torch import nn"


def judged(student: str, test: str, names=("f",)):
    cells = [("imports", IMPORTS), ("student", student)]
    verdict, error = judge_in_student_process(cells, IMPORTS, list(names), "t", test, 1)
    return verdict, error


def passes(student, test, names=("f",)):
    verdict, error = judged(student, test, names)
    assert verdict.passed, (verdict, error)


def fails(student, test, names=("f",)):
    verdict, _ = judged(student, test, names)
    assert not verdict.passed, verdict
    return verdict


# --- values travel by value ------------------------------------------------------------------


def test_values_arrive_as_plain_values_of_the_judges_own_types():
    student = (
        "import numpy as np, collections\n"
        "class Sneaky(torch.Tensor):\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "class Always(int):\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "def f():\n"
        "    return {'t': torch.arange(6.0).as_subclass(Sneaky), 'i': Always(3), 'n': np.int64(4),\n"
        "            'a': np.arange(6).reshape(2, 3).T, 'od': collections.OrderedDict(x=1),\n"
        "            'size': torch.Size([2, 3]), 'p': torch.nn.Parameter(torch.ones(2)), 'f': float('nan'),\n"
        "            'dt': torch.float64, (1, 2): slice(1, None)}\n"
    )
    test = (
        "r = f()\n"
        "assert type(r['t']) is torch.Tensor and r['t'].tolist() == [0, 1, 2, 3, 4, 5]\n"
        "assert type(r['i']) is int and r['i'] != 4\n"
        "import numpy as np\n"
        "assert type(r['n']) is np.int64 and r['n'] == 4\n"
        "assert type(r['a']) is np.ndarray and r['a'].tolist() == [[0, 3], [1, 4], [2, 5]]\n"
        "assert type(r['od']) is dict and type(r['size']) is tuple and r['size'] == (2, 3)\n"
        "assert type(r['p']) is torch.Tensor and not r['p'].requires_grad\n"
        "assert math.isnan(r['f']) and r['dt'] is torch.float64 and r[(1, 2)] == slice(1, None)\n"
    )
    passes(student, test)


def test_arguments_are_copies_and_a_generator_continues_its_stream():
    student = "def f(x, g):\n    x.add_(1)\n    return torch.rand(2, generator=g)\n"
    test = (
        "x = torch.zeros(2)\n"
        "g = torch.Generator().manual_seed(0)\n"
        "a, b = f(x, g), f(x, g)\n"
        "assert x.tolist() == [0, 0], 'the student changed a copy'\n"
        "fresh = torch.Generator().manual_seed(0)\n"
        "assert a.tolist() == torch.rand(2, generator=fresh).tolist()\n"
        "assert b.tolist() == torch.rand(2, generator=fresh).tolist()\n"
    )
    passes(student, test)


def test_a_handle_answers_calls_and_attributes_and_refuses_everything_else():
    student = (
        "class Model:\n"
        "    scale = 2\n"
        "    def __eq__(self, other):\n"
        "        return True\n"
        "    def times(self, x):\n"
        "        return self.scale * x\n"
        "f = Model\n"
    )
    test = (
        "m = f()\n"
        "assert m.times(3) == 6 and m.scale == 2\n"
        "m.scale = 5\n"
        "assert m.times(3) == 15\n"
        "refused = 0\n"
        "for attempt in (lambda: m == 1, lambda: bool(m), lambda: hash(m), lambda: list(m),\n"
        "                lambda: f'{m}', lambda: repr(m), lambda: m + 1, lambda: float(m), lambda: 1 in m,\n"
        "                lambda: torch.zeros(1) + m):\n"
        "    try:\n"
        "        attempt()\n"
        "    except TypeError:\n"
        "        refused += 1\n"
        "assert refused == 10, refused\n"
    )
    passes(student, test)


def test_the_students_exception_keeps_its_builtin_type_and_message():
    verdict = fails("def f():\n    raise ValueError('bad shape')\n", "f()")
    assert (verdict.ename, verdict.evalue, verdict.fault) == ("ValueError", "bad shape", None)
    passes(
        "def f():\n    raise KeyError('k')\n",
        "try:\n    f()\nexcept KeyError:\n    pass\nelse:\n    raise AssertionError",
    )


# --- the judge's objects, seen from student code ------------------------------------------------


class_source = (
    "class _Layer(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.weight = nn.Parameter(torch.ones(1))\n"
    "        self.calls = []\n"
    "    def forward(self, x):\n"
    "        self.calls.append('forward')\n"
    "        return x * self.weight\n"
    "    def undo(self, y):\n"
    "        self.calls.append('undo')\n"
    "        return y / self.weight\n"
)


def test_student_code_may_call_a_test_layer_and_its_own_methods_but_nothing_else():
    # The stub is an nn.Module of the student's process: its own (empty) state is all that
    # nn.Module's methods can reach; the judge's layer is reached only through call and undo.
    student = (
        "def f(layer):\n"
        "    out = [layer(torch.ones(2)).tolist(), layer.undo(torch.ones(2)).tolist()]\n"
        "    for name in ('weight', 'calls', 'forward_hooks', 'secret'):\n"
        "        try:\n"
        "            out.append(repr(getattr(layer, name)))\n"
        "        except AttributeError:\n"
        "            out.append(None)\n"
        "    try:\n"
        "        layer.load_state_dict({'weight': torch.zeros(1)})\n"
        "    except RuntimeError:\n"
        "        pass\n"
        "    layer.zero_grad()\n"
        "    out.append(list(layer.parameters()))\n"
        "    return out\n"
    )
    test = class_source + (
        "layer = _Layer()\n"
        "out = f(layer)\n"
        "assert out[:2] == [[1.0, 1.0], [1.0, 1.0]] and layer.calls == ['forward', 'undo']\n"
        "assert out[2:6] == [None] * 4, out\n"
        "assert out[-1] == [], 'the stub has no parameters of the judge'\n"
        "assert float(layer.weight) == 1.0, 'the judge layer was changed'\n"
    )
    passes(student, test)


def test_a_forged_callback_to_a_method_the_test_did_not_expose_is_refused():
    student = (
        "from convae.grading import agent as _agent\n"
        "def f(layer):\n"
        "    a = _agent_ref[0]\n"
        "    try:\n"
        "        a.callback(layer._judge_ref, 'load_state_dict', ({'weight': torch.zeros(1)},), {})\n"
        "    except Exception as error:\n"
        "        return type(error).__name__\n"
        "    return 'accepted'\n"
        "_agent_ref = []\n"
        "_original = _agent.Agent.__init__\n"
        "def _capture(self, *a, **k):\n"
        "    _original(self, *a, **k)\n"
        "    _agent_ref.append(self)\n"
        "_agent.Agent.__init__ = _capture\n"
    )
    test = class_source + (
        "layer = _Layer()\n"
        "assert f(layer) == 'AttributeError'\n"
        "assert float(layer.weight) == 1.0, 'the judge object was changed'\n"
    )
    passes(student, test)


def test_a_test_object_round_trips_as_itself_and_a_hook_runs_in_the_judge():
    student = (
        "class Holder(nn.Module):\n"
        "    def __init__(self, inner):\n"
        "        super().__init__()\n"
        "        self.inner = inner\n"
        "        self.conv = nn.Conv2d(1, 1, 1)\n"
        "    def forward(self, x):\n"
        "        return self.inner(self.conv(x))\n"
        "f = Holder\n"
    )
    test = class_source + (
        "from convae.grading import checks\n"
        "layer = _Layer()\n"
        "h = f(layer)\n"
        "assert h.inner is layer\n"
        "seen = []\n"
        "convs = [m for m in checks.listed(h.modules()) if checks.is_instance(m, nn.Conv2d)]\n"
        "hook = convs[0].register_forward_hook(lambda mod, inp, out: seen.append(tuple(out.shape)))\n"
        "h(torch.ones(1, 1, 2, 2))\n"
        "hook.remove()\n"
        "assert seen == [(1, 1, 2, 2)] and layer.calls == ['forward']\n"
    )
    passes(student, test)


# --- faults of the student's side ----------------------------------------------------------------


def test_a_hang_is_a_timeout_fault():
    verdict, _ = judge_in_student_process(
        [("s", "def f():\n    while True:\n        pass\n")], IMPORTS, ["f"], "t", "f()", 1, cell_seconds=5
    )
    assert verdict.fault and verdict.ename == "Timeout", verdict


def test_a_dying_student_process_is_a_fault_and_not_an_error_of_the_judge():
    verdict = fails("import os\ndef f():\n    os._exit(1)\n", "f()")
    assert verdict.fault and verdict.ename == "KernelDied"


def test_a_forged_reply_cannot_forge_a_value_of_another_type():
    # The agent is replaced by one that answers every request with a crafted JSON reply.
    forge = (
        "from convae.grading import agent as _agent, wire as _wire\n"
        "def _serve(self, message, blob):\n"
        "    return {'value': {'tensor': 'missing'}}, {}\n"
        "_agent.Agent.serve_request = _serve\n"
        "def f():\n    return 1\n"
    )
    verdict = fails(forge, "assert f() == 1")
    assert verdict.fault and verdict.ename == "ProtocolError"


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff\xff\xff\xff\x00\x00\x00\x00",  # a 4 GiB JSON part
        struct.pack(">II", 5, 0) + b"NaN!!",  # not JSON
        struct.pack(">II", 9, 0) + b"[1, 2, 3]",  # not an object
    ],
)
def test_garbage_on_the_channel_is_a_protocol_fault(payload):
    student = (
        "from convae.grading import agent as _agent\n"
        "def _run(self, token):\n"
        "    from convae.grading import wire\n"
        "    wire.send_frame(self.channel.sock, {'hello': token})\n"
        "    self.channel.receive()\n"
        f"    self.channel.sock.sendall({payload!r})\n"
        "    import time; time.sleep(5)\n"
        "_agent.Agent.run = _run\n"
        "def f():\n    return 1\n"
    )
    verdict = fails(student, "f()")
    assert verdict.fault and verdict.ename == "ProtocolError", verdict


def test_a_huge_or_deeply_nested_result_is_refused():
    verdict = fails("def f():\n    return torch.zeros(80 * 2**20)\n", "f()")  # 320 MB of float32
    assert verdict.ename == "ProtocolError"
    verdict, _ = judged(
        "def f():\n    v = []\n    for _ in range(200):\n        v = [v]\n    return v\n", "f()"
    )
    assert not verdict.passed  # the agent refuses to encode it; a forged one is refused by the judge


# --- the format itself -------------------------------------------------------------------------


def decode(document, blob=b""):
    codec = wire.Codec()
    return codec.decode_message(document, blob, ["value"])["value"]


def test_the_reader_refuses_what_is_not_a_well_formed_value():
    deep = {"value": 1}
    for _ in range(40):
        deep = {"list": [deep]}
    for bad in (
        [1, 2],
        {"list": [1], "tuple": [2]},
        {"float": "1e9"},
        {"dict": [[{"list": []}, 1]]},
        {"slice": [1, "a", None]},
        {"dtype": "__import__"},
        {"device": "file:///etc/passwd"},
        {"tensor": "0"},
        {"pickle": "gASVAAAA"},
        {"meta": ["float32", [-1]]},
        {"meta": ["float32", [2**41]]},
        {"meta": ["float32", [1] * 17]},
        {"meta": ["__import__", [1]]},
        {"meta": "float32"},
        deep,
    ):
        with pytest.raises(wire.ProtocolError):
            decode({"value": bad})
    with pytest.raises(wire.ProtocolError):
        decode({"value": {"tensor": "0"}}, b'\x08\x00\x00\x00\x00\x00\x00\x00{"0":{}}')


def test_every_plain_value_round_trips():
    values = [
        None,
        True,
        -(2**70),
        math.inf,
        "é",
        (1, [2.5, {"a": (None,)}]),
        {(1, "x"): 3},
        torch.arange(12, dtype=torch.int16).reshape(3, 4).T,
        torch.tensor([True, False]),
        torch.randn(2, dtype=torch.complex64),
        np.arange(6.0).reshape(2, 3)[:, ::-1],
        np.float32(1.5),
        torch.float16,
        torch.device("cpu"),
        slice(None, 3, 2),
        ...,
        torch.empty(10**9, 10**6, dtype=torch.float64, device="meta"),  # no data, whatever its shape
    ]
    codec = wire.Codec()
    document, blob = codec.encode_message({}, {"value": values})
    json.dumps(document)  # plain JSON
    back = decode(document, blob)
    for original, copy in zip(values, back, strict=True):
        if isinstance(original, torch.Tensor) and original.is_meta:
            assert copy.is_meta and copy.dtype == original.dtype and copy.shape == original.shape
        elif isinstance(original, torch.Tensor):
            assert copy.dtype == original.dtype and torch.equal(copy, original)
        elif isinstance(original, np.ndarray):
            assert copy.dtype == original.dtype and (copy == original).all()
        elif isinstance(original, float) and math.isnan(original):
            assert math.isnan(copy)
        else:
            assert copy == original and type(copy) is type(original)


NOISE = {
    "device": "def f(x):\n    return x + torch.randn(x.shape, dtype=x.dtype, device=x.device)\n",
    "moved": "def f(x):\n    return x + torch.randn(x.shape).to(x)\n",
    "cpu": "def f(x):\n    return x + torch.randn(x.shape)\n",
    "cpu_result": "def f(x):\n    return torch.randn(x.shape)\n",
    "reads_a_value": "def f(x):\n    return x + float(x.sum())\n",
    "not_a_tensor": "def f(x):\n    return [1.0]\n",
}


@pytest.mark.parametrize(
    "answer, expected",
    [("device", True), ("moved", True), ("cpu", False), ("cpu_result", False), ("reads_a_value", None),
     ("not_a_tensor", None)],
)  # fmt: skip
def test_a_function_is_tried_on_the_meta_device_through_the_judge_and_in_a_kernel(answer, expected):
    test = (
        "from convae.grading import checks\n"
        f"assert checks.stays_on_device(f, torch.rand(4, 3)) is {expected}\n"
    )
    passes(NOISE[answer], test)
    namespace = {}
    exec(IMPORTS + "\n" + NOISE[answer], namespace)
    from convae.grading import checks

    assert checks.stays_on_device(namespace["f"], torch.rand(4, 3)) is expected


@pytest.mark.parametrize(
    "check",
    [
        "assert f(torch.ones(2)).tolist() == [1.0, 1.0]",
        "assert torch.allclose(f(torch.ones(2)), torch.ones(2))",
        "assert float(f(torch.ones(2)).sum()) == 2.0",
        "assert bool((f(torch.ones(2)) == 1).all())",
        "assert torch.equal(f(torch.ones(2)), f(torch.ones(2)))",
    ],
)
def test_a_meta_tensor_in_place_of_values_passes_no_value_check(check):
    """The meta device carries no data, so a student who returns meta tensors gives no values."""
    fails("def f(x):\n    return torch.empty(x.shape, device='meta')\n", check)


def test_opaque_operations_never_reach_the_students_process():
    class Refusing:
        calls = 0

        def request(self, *args, **kwargs):
            Refusing.calls += 1

    handle = proxy.Handle(Refusing(), 1, "Model")
    for attempt in (lambda: handle == 1, lambda: bool(handle), lambda: hash(handle), lambda: iter(handle)):
        with pytest.raises(proxy.OpaqueValueError):
            attempt()
    assert Refusing.calls == 0


def test_a_unix_socket_pair_carries_a_frame_intact():
    a, b = socket.socketpair()
    with a, b:
        wire.send_frame(a, {"x": 1}, b"abc")
        assert wire.receive_frame(b) == ({"x": 1}, b"abc")


def test_only_a_kernel_message_the_grader_cannot_read_counts_as_a_lost_kernel():
    """A forged signature or a broken frame on the kernel's channels is KernelMessageUnreadable,
    which costs its cell; any other ValueError (a bug of ours) is not mistaken for one."""
    from convae.grading import execute

    session = execute.GuardedKernelManager().session
    session.key = b"the job's key"
    good = session.serialize(session.msg("status", {"execution_state": "idle"}))
    assert session.deserialize(session.feed_identities(good)[1])["content"]["execution_state"] == "idle"
    forged = list(good)
    forged[1] = b"0" * 64  # the signature frame, after the delimiter
    with pytest.raises(execute.KernelMessageUnreadable):
        session.deserialize(session.feed_identities(forged)[1])
    with pytest.raises(execute.KernelMessageUnreadable):
        session.feed_identities([b"a frame without the delimiter"])
    assert not issubclass(ValueError, execute.KERNEL_LOST)
    assert issubclass(execute.KernelMessageUnreadable, execute.KERNEL_LOST)


def test_grading_runs_of_one_process_share_its_judge_server_and_a_dead_one_is_replaced():
    import os
    import signal

    from convae.grading import judge

    first = judge.process_server()
    assert judge.process_server() is first
    os.killpg(first.process.pid, signal.SIGKILL)
    first.process.wait()
    second = judge.process_server()
    assert second is not first and second.process.poll() is None
    assert not first.folder.exists()  # the dead server's socket folder is gone
