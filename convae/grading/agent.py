"""The student-side end of the judge's channel; it runs inside the student's kernel.

While grading, each test cell becomes one call of ``serve`` in the kernel (``execute`` sends it):
it connects to the judge and answers the judge's requests in the kernel's own namespace (look a
name up, read or set an attribute, call, list, check a type, run a probe) until the judge says
``done``. Results go back by value where they are values (``wire``), as handles otherwise.
Objects the judge passes to student code arrive as stubs whose calls go back to the judge.

This code runs in the student's process, where the student's code can replace any of it. The
judge trusts nothing it receives; replacing the agent can only make answers look wrong.
"""

from __future__ import annotations

import functools
import itertools
import socket

from convae.grading import probes, wire

LIST_LIMIT = 100_000


class AgentCodec(wire.Codec):
    """The student's objects leave as handles; the judge's come in as stubs."""

    def __init__(self, agent):
        super().__init__()
        self.agent = agent
        self.generators = []  # torch Generators made from the current request, in order

    def reference(self, value):
        if is_stub(value):
            return {"judge": {"id": object.__getattribute__(value, "_judge_ref")}}
        return {"handle": self.agent.handle_for(value)}

    def dereference(self, tag, body):
        if tag == "handle":
            return self.agent.objects[body["id"]]
        if tag == "judge":
            return self.agent.stub_for(body)
        if tag == "generator":
            import torch

            generator = torch.Generator()
            generator.set_state(self._tensor(body["state"]))
            self.generators.append(generator)
            return generator
        raise wire.ProtocolError(f"an unknown tag {tag!r}")


class Agent:
    def __init__(self, sock: socket.socket, namespace: dict):
        self.namespace = namespace
        self.objects: dict[int, object] = {}
        self.ids: dict[int, int] = {}  # id(object) -> handle id
        self.stubs: dict[int, object] = {}
        self.codec = AgentCodec(self)
        self.channel = wire.Channel(sock, self.codec, self.serve_request)
        self.done = False

    # handles and stubs -------------------------------------------------------------------
    def handle_for(self, value) -> dict:
        key = self.ids.get(id(value))
        if key is None:
            key = len(self.objects) + 1
            self.objects[key] = value  # kept alive for the test cell, so id() stays unique
            self.ids[id(value)] = key
        return {"id": key, "type": type(value).__name__[:100]}

    def stub_for(self, body: dict):
        ref = body["id"]
        if ref not in self.stubs:
            self.stubs[ref] = make_stub(self, ref, body.get("kind"), body.get("methods", []))
        return self.stubs[ref]

    def callback(self, ref: int, method: str, args, kwargs):
        """Call a judge object's method; its result comes back by value (or as a stub)."""
        document, blob = self.channel.request(
            {"op": "callback", "target": ref, "method": method}, {"args": list(args), "kwargs": dict(kwargs)}
        )
        if "error" in document:
            raise judge_error(document["error"])
        return self.codec.decode_message(document, blob, ["value"]).get("value")

    # serving -----------------------------------------------------------------------------
    def serve_request(self, message: dict, blob: bytes):
        op = message.get("op")
        if op == "done":
            self.done = True
            return {}, {}
        outer, self.codec.generators = self.codec.generators, []  # requests nest through callbacks
        try:
            values = self.codec.decode_message(message, blob, ["target", "args", "kwargs", "value"])
            result = self.perform(op, message, values)
            states = [g.get_state() for g in self.codec.generators]
        except (Exception, SystemExit) as error:  # the student's error, reported as data
            return {"error": wire.describe_error(error)}, {}
        finally:
            self.codec.generators = outer
        return {}, {"value": result, "generators": states}

    def perform(self, op, message, values):
        target = values.get("target")
        args, kwargs = values.get("args", []), values.get("kwargs", {})
        if op == "lookup":
            name = message["name"]
            if name not in self.namespace:
                raise NameError(f"name {name!r} is not defined")
            return self.namespace[name]
        if op == "getattr":
            return getattr(target, message["name"])
        if op == "setattr":
            setattr(target, message["name"], values.get("value"))
            return None
        if op == "call":
            return target(*args, **kwargs)
        if op == "call_method":
            return getattr(target, message["name"])(*args, **kwargs)
        if op == "list":
            items = list(itertools.islice(iter(target), LIST_LIMIT + 1))
            if len(items) > LIST_LIMIT:
                raise ValueError(f"more than {LIST_LIMIT:,} items")
            return items
        if op == "isinstance":
            return isinstance(target, resolve(message["module"], message["qualname"]))
        if op == "probe":
            name = message["name"]
            if name not in probes.__all__:
                raise NameError(f"no probe {name!r}")
            return getattr(probes, name)(*args, **kwargs)
        if op == "probe_function":
            name = message["name"]
            if name not in probes.__all__:
                raise NameError(f"no probe {name!r}")
            return getattr(probes, name)
        raise ValueError(f"unknown request {op!r}")

    def run(self, token: str) -> None:
        self.channel.send({"hello": token})
        while not self.done:
            message, blob = self.channel.receive()
            if "op" not in message or type(message.get("id")) is not int:
                raise wire.ProtocolError("the judge sent a message that is not a request")
            self.channel.serve_one(message, blob)


def resolve(module_name: str, qualname: str):
    """The class ``module_name.qualname``, as this process sees it."""
    import importlib

    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise TypeError(f"{module_name}.{qualname} is not a class")
    return obj


def judge_error(error: dict) -> BaseException:
    """The judge's exception, rebuilt as its built-in base type for student code to catch."""
    import builtins

    base = getattr(builtins, error.get("builtin", "Exception"), Exception)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        base = Exception
    try:
        return base(error.get("message", ""))
    except Exception:  # noqa: BLE001 -- e.g. UnicodeError wants more arguments
        return Exception(error.get("message", ""))


# --- stubs of the judge's objects -------------------------------------------------------------


def _judge_method(agent, ref, name):
    def method(*args, **kwargs):
        return agent.callback(ref, name, args, kwargs)

    method.__name__ = name
    return method


class JudgeStub:
    """A judge object seen from student code: only the methods the judge exposes exist."""

    def __init__(self, agent, ref, methods):
        object.__setattr__(self, "_judge", (agent, frozenset(methods)))
        object.__setattr__(self, "_judge_ref", ref)

    def __call__(self, *args, **kwargs):
        agent, methods = object.__getattribute__(self, "_judge")
        if "__call__" not in methods:
            raise TypeError("this object of the tests is not callable")
        return agent.callback(self._judge_ref, "__call__", args, kwargs)

    def __getattr__(self, name):
        agent, methods = object.__getattribute__(self, "_judge")
        if name in methods and not name.startswith("__"):
            return _judge_method(agent, self._judge_ref, name)
        raise AttributeError(f"the tests' object has no attribute {name!r} that your code may use")


@functools.cache
def module_stub_classes():
    """nn.Module stubs (made when first needed: torch is imported by then)."""
    import torch

    class JudgeModule(torch.nn.Module):
        """A module of the tests: calling it, and its exposed methods, run in the judge."""

        def __init__(self, agent, ref, methods):
            super().__init__()
            object.__setattr__(self, "_judge", (agent, frozenset(methods)))
            object.__setattr__(self, "_judge_ref", ref)

        def forward(self, *args, **kwargs):
            agent, _ = object.__getattribute__(self, "_judge")
            return agent.callback(self._judge_ref, "__call__", args, kwargs)

        def __getattr__(self, name):
            agent, methods = object.__getattribute__(self, "_judge")
            if name in methods and not name.startswith("__"):
                return _judge_method(agent, self._judge_ref, name)
            return super().__getattr__(name)

    class JudgeContainer(JudgeModule):
        """A sequence of modules of the tests (indexing, length and iteration run in the judge)."""

        def __getitem__(self, index):
            return self._judge[0].callback(self._judge_ref, "__getitem__", (index,), {})

        def __len__(self):
            return self._judge[0].callback(self._judge_ref, "__len__", (), {})

        def __iter__(self):
            return iter(self._judge[0].callback(self._judge_ref, "__iter__", (), {}))

    return JudgeModule, JudgeContainer


def is_stub(value) -> bool:
    return isinstance(value, JudgeStub) or isinstance(value, module_stub_classes()[0])


def make_stub(agent, ref, kind, methods):
    if kind == "module":
        module, container = module_stub_classes()
        return (container if "__getitem__" in methods else module)(agent, ref, methods)
    return JudgeStub(agent, ref, methods)


# --- the entry point a test cell becomes ------------------------------------------------------


def serve(path: str, token: str, namespace: dict, seed: int = 0) -> None:
    """Answer the judge's requests for one test cell, in ``namespace`` (the kernel's globals).

    The random state of torch, numpy and ``random`` is seeded for the test and put back after
    it, so that grading is repeatable and the cells after the test see what they would have.
    """
    import random

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    with sock, _seeded(seed, random):
        Agent(sock, namespace).run(token)


class _seeded:
    def __init__(self, seed, random_module):
        self.seed, self.random = seed, random_module

    def __enter__(self):
        import sys

        self.torch, self.numpy = sys.modules.get("torch"), sys.modules.get("numpy")
        self.saved = [self.random.getstate()]
        self.random.seed(self.seed)
        if self.numpy is not None:
            self.saved.append(self.numpy.random.get_state())
            self.numpy.random.seed(self.seed % 2**32)
        if self.torch is not None:
            self.saved.append(self.torch.get_rng_state())
            self.torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        self.random.setstate(self.saved[0])
        if self.numpy is not None:
            self.numpy.random.set_state(self.saved[1])
        if self.torch is not None:
            self.torch.set_rng_state(self.saved[-1])
        return False
