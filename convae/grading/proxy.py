"""The judge's view of the student's process: values, or opaque handles.

A ``Session`` is the judge's end of one test cell's channel to the student's kernel. Every name
a test cell reads from the student's notebook comes through it: calls, attribute reads and
method calls go to the student's process, and what comes back is a plain value built by the
judge from the wire (``wire``), or a ``Handle``. A handle can be called, have its attributes
read or set and its methods called; comparing it, asking its truth value, hashing, iterating or
formatting it raises ``OpaqueValueError`` here, without asking the student's process anything.

Objects of the tests passed to student code (a toy layer, a loss function, a forward hook) are
*exposed*: the student's process gets a stub, and its calls come back here, limited to what
``exposure`` allows (calling, and the public methods the test's own classes define).

Whatever goes wrong on the student's side of the channel (a hang, a closed connection, a
message that is too large or malformed) is a ``ChannelFault``: it ends the test cell, costs its
points, and is flagged in the report.
"""

from __future__ import annotations

import builtins
import contextlib
import socket
import time
import types

from convae.grading import wire

JUDGE_MODULE = "__judge__"  # the module name of classes and functions test cells define
# Instructor modules whose functions a test may hand to student code too (checks' forward hooks).
EXPOSABLE_MODULES = (JUDGE_MODULE, "convae.grading.checks")
CONTAINER_METHODS = ("__getitem__", "__len__", "__iter__")
LIST_LIMIT = 100_000


class ChannelFault(BaseException):
    """The student's side of the channel broke: nothing more can be asked of it in this cell.

    A BaseException, so that a test's ``except Exception`` cannot hide it.
    """

    ename = "GradingChannelError"


class StudentTimeout(ChannelFault):
    ename = "Timeout"


class StudentGone(ChannelFault):
    ename = "KernelDied"


class StudentGarbage(ChannelFault):
    ename = "ProtocolError"


class OpaqueValueError(TypeError):
    """A test asked a handle for something only a plain value can give."""


class StudentError(Exception):
    """An exception raised by the student's code, rebuilt from its description."""

    def __init__(self, description: dict):
        self.type_name = description.get("type", "Exception")
        self.message = description.get("message", "")
        super().__init__(self.message)

    def __str__(self):
        return self.message


_BUILTIN_EXCEPTIONS = {
    name: cls
    for name, cls in vars(builtins).items()
    if isinstance(cls, type) and issubclass(cls, Exception) and cls is not Exception
}
_STUDENT_ERROR_TYPES: dict[str, type] = {}


def student_error(description: dict) -> StudentError:
    """A StudentError that is also the student's nearest built-in exception type, so that a test's
    ``except ValueError`` catches a ValueError of the student's code."""
    base = _BUILTIN_EXCEPTIONS.get(str(description.get("builtin")))
    if base is None:
        return StudentError(description)
    if base.__name__ not in _STUDENT_ERROR_TYPES:
        try:
            cls = type(f"Student{base.__name__}", (StudentError, base), {})
        except TypeError:  # a layout conflict (e.g. OSError subclasses)
            cls = StudentError
        _STUDENT_ERROR_TYPES[base.__name__] = cls
    try:
        return _STUDENT_ERROR_TYPES[base.__name__](description)
    except TypeError:  # a base whose constructor wants more (UnicodeDecodeError)
        return StudentError(description)


# --- handles ----------------------------------------------------------------------------------


def _opaque(operation):
    def refuse(self, *args, **kwargs):
        raise OpaqueValueError(
            f"the student's code gave a {object.__getattribute__(self, '_type')} object where a plain value "
            f"was expected (the grader does not {operation} such objects)"
        )

    return refuse


class Handle:
    """An object in the student's process. Calls and attribute access go there; nothing else."""

    __slots__ = ("_session", "_id", "_type", "__weakref__")

    def __init__(self, session, handle_id: int, type_name: str):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_id", handle_id)
        object.__setattr__(self, "_type", type_name)

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # Python's own protocol lookups are never asked of the student
        return self._session.request("getattr", target=self, name=name)

    def __setattr__(self, name, value):
        self._session.request("setattr", target=self, name=name, value=value)

    def __call__(self, *args, **kwargs):
        return self._session.request("call", target=self, args=list(args), kwargs=kwargs)

    def __getitem__(self, key):
        return self._session.request("call_method", target=self, name="__getitem__", args=[key], kwargs={})

    def __len__(self):
        value = self._session.request("call_method", target=self, name="__len__", args=[], kwargs={})
        if type(value) is not int or value < 0:
            raise OpaqueValueError(f"len() of the student's {self._type} object is not a natural number")
        return value

    __eq__ = _opaque("compare")
    __ne__ = _opaque("compare")
    __lt__ = _opaque("compare")
    __le__ = _opaque("compare")
    __gt__ = _opaque("compare")
    __ge__ = _opaque("compare")
    __bool__ = _opaque("take the truth value of")
    __hash__ = _opaque("hash")
    __iter__ = _opaque("iterate over (use checks.listed)")
    __contains__ = _opaque("search")
    __index__ = _opaque("convert to an index")
    __int__ = _opaque("convert to a number")
    __float__ = _opaque("convert to a number")
    __complex__ = _opaque("convert to a number")
    __format__ = _opaque("format")
    __str__ = _opaque("format")
    __repr__ = _opaque("format")
    __array__ = _opaque("convert to an array")
    __reversed__ = _opaque("iterate over")
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _opaque("do arithmetic with")
    __truediv__ = __rtruediv__ = __neg__ = __abs__ = __pow__ = _opaque("do arithmetic with")

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise OpaqueValueError("the student's code gave an object where a tensor was expected")


def type_name(handle: Handle) -> str:
    return object.__getattribute__(handle, "_type")


# --- what the student's code may do with the judge's objects ----------------------------------


def defined_by_tests(cls) -> bool:
    return getattr(cls, "__module__", None) == JUDGE_MODULE


def exposure(value) -> tuple[str, list[str]] | None:
    """(kind, methods) under which ``value`` may be handed to student code, or None."""
    import torch

    test_classes = [c for c in type(value).__mro__ if defined_by_tests(c)]
    methods = sorted(
        {
            name
            for c in test_classes
            for name, member in vars(c).items()
            if callable(member) and (not name.startswith("_") or name in CONTAINER_METHODS)
        }
    )
    if isinstance(value, torch.nn.Module):
        if isinstance(value, (torch.nn.Sequential, torch.nn.ModuleList)):
            methods = sorted(set(methods) | set(CONTAINER_METHODS))
        return "module", ["__call__", *methods]
    if test_classes:
        callable_ = any("__call__" in vars(c) for c in test_classes)
        return "object", (["__call__"] if callable_ else []) + methods
    if isinstance(value, (types.FunctionType, types.MethodType)) and (
        value.__module__ in EXPOSABLE_MODULES or defined_by_tests(type(getattr(value, "__self__", None)))
    ):
        return "callable", ["__call__"]
    if isinstance(value, (types.BuiltinFunctionType, types.FunctionType)) and (
        str(getattr(value, "__module__", "")).split(".")[0] in ("torch", "math")
    ):
        return "callable", ["__call__"]
    return None


# --- the session -------------------------------------------------------------------------------


class JudgeCodec(wire.Codec):
    def __init__(self, session, limits):
        super().__init__(limits)
        self.session = session
        self.generators = []

    def reference(self, value):
        if isinstance(value, Handle):
            if object.__getattribute__(value, "_session") is not self.session:
                raise ValueError("a handle from another test cell")
            return {"handle": {"id": object.__getattribute__(value, "_id")}}
        import torch

        if isinstance(value, torch.Generator):
            if value.device.type != "cpu":
                raise ValueError("only CPU generators can be passed to student code")
            self.generators.append(value)
            return {"generator": {"state": self.add_tensor(value.get_state())}}
        return {"judge": self.session.expose(value)}

    def dereference(self, tag, body):
        if tag == "handle":
            return self.session.handle(body)
        if tag == "judge":
            ref = body.get("id") if type(body) is dict else None
            if ref not in self.session.exposed:
                raise wire.ProtocolError("a reference to an object the judge never sent")
            return self.session.exposed[ref][0]
        raise wire.ProtocolError(f"an unknown tag {tag!r}")


class Session:
    """The judge's end of one test cell's channel to the student's process."""

    def __init__(self, sock: socket.socket, deadline: float, call_seconds: float, limits=wire.DEFAULT_LIMITS):
        self.sock = sock
        self.limits = limits
        self.call_seconds = call_seconds
        self.cell_deadline = deadline
        self.codec = JudgeCodec(self, limits)
        self.channel = wire.Channel(sock, self.codec, self.serve_callback, limits)
        self.handles: dict[int, Handle] = {}
        self.exposed: dict[int, tuple[object, frozenset]] = {}
        self._exposure_ids: dict[int, int] = {}
        self.fault: ChannelFault | None = None
        self.calls = 0

    # requests --------------------------------------------------------------------------
    def request(self, op: str, **fields):
        """Ask the student's process; returns the decoded value or raises its error."""
        if self.fault is not None:
            raise type(self.fault)(*self.fault.args)
        document = {k: v for k, v in fields.items() if k in ("name", "module", "qualname")}
        values = {k: v for k, v in fields.items() if k in ("target", "args", "kwargs", "value")}
        self.calls += 1
        outer_generators, self.codec.generators = self.codec.generators, []
        try:
            self._arm_deadline()
            reply, blob = self._guarded(self.channel.request, {"op": op, **document}, values)
            sent = self.codec.generators
            if "error" in reply:
                description = reply["error"] if type(reply["error"]) is dict else {}
                raise student_error({k: str(v)[: wire.MESSAGE_CHARS] for k, v in description.items()})
            decoded = self._guarded(self.codec.decode_message, reply, blob, ["value", "generators"])
            self._write_back(sent, decoded.get("generators", []))
            return decoded.get("value")
        finally:
            self.codec.generators = outer_generators

    def _arm_deadline(self):
        if self.channel._nesting == 0:  # a callback's requests share the outer call's deadline
            self.channel.deadline = min(self.cell_deadline, time.monotonic() + self.call_seconds)

    def _guarded(self, fn, *args):
        try:
            return fn(*args)
        except ChannelFault:
            raise
        except TimeoutError:
            self._fail(StudentTimeout(f"the student's code did not answer within {self.call_seconds:.0f} s"))
        except (EOFError, ConnectionError, OSError):
            self._fail(StudentGone("the kernel stopped answering (it died, or the connection was closed)"))
        except wire.ProtocolError as error:
            self._fail(StudentGarbage(f"the kernel sent something the grader cannot read: {error}"))

    def _fail(self, fault: ChannelFault):
        self.fault = fault
        with contextlib.suppress(OSError):
            self.sock.close()
        raise fault

    def _write_back(self, generators, states):
        """A generator passed to student code continues where the student's code left it."""
        if type(states) is not list or len(states) != len(generators):
            self._fail(StudentGarbage("the kernel returned the wrong number of generator states"))
        for generator, state in zip(generators, states, strict=True):
            try:
                generator.set_state(state)
            except (TypeError, RuntimeError):
                self._fail(StudentGarbage("the kernel returned an invalid generator state"))

    def finish(self):
        """Tell the student's side the test cell is over."""
        if self.fault is None:
            with contextlib.suppress(ChannelFault, StudentError):
                self.channel.deadline = time.monotonic() + 5
                self._guarded(self.channel.request, {"op": "done"}, {})
        with contextlib.suppress(OSError):
            self.sock.close()

    # handles and exposures --------------------------------------------------------------
    def handle(self, body) -> Handle:
        if type(body) is not dict or type(body.get("id")) is not int:
            raise wire.ProtocolError("a malformed handle")
        handle_id = body["id"]
        if handle_id not in self.handles:
            name = str(body.get("type", "object"))[:100]
            clean = "".join(ch for ch in name if ch.isalnum() or ch in "_.") or "object"
            self.handles[handle_id] = Handle(self, handle_id, clean)
        return self.handles[handle_id]

    def expose(self, value) -> dict:
        allowed = exposure(value)
        if allowed is None:
            raise TypeError(f"a {type(value).__name__} of the tests cannot be handed to student code")
        kind, methods = allowed
        ref = self._exposure_ids.get(id(value))
        if ref is None:
            ref = len(self.exposed) + 1
            self.exposed[ref] = (value, frozenset(methods))
            self._exposure_ids[id(value)] = ref
        return {"id": ref, "kind": kind, "methods": methods}

    def serve_callback(self, message: dict, blob: bytes):
        """Student code calls one of the judge's objects: only what its exposure allows."""
        if message.get("op") != "callback":
            raise wire.ProtocolError("the kernel asked the judge for something other than a callback")
        target, method = message.get("target"), message.get("method")
        if target not in self.exposed:
            raise wire.ProtocolError("a callback to an object the judge never sent")
        value, methods = self.exposed[target]
        if method not in methods:
            return {
                "error": {"type": "AttributeError", "builtin": "AttributeError", "message": f"no {method}"}
            }, {}
        values = self.codec.decode_message(message, blob, ["args", "kwargs"])
        args, kwargs = values.get("args", []), values.get("kwargs", {})
        if type(args) is not list or type(kwargs) is not dict or not all(type(k) is str for k in kwargs):
            raise wire.ProtocolError("malformed callback arguments")
        try:
            if method == "__call__":
                result = value(*args, **kwargs)
            elif method == "__getitem__":
                result = value[args[0]]
            elif method == "__len__":
                result = len(value)
            elif method == "__iter__":
                result = list(value)[:LIST_LIMIT]
            else:
                result = getattr(value, method)(*args, **kwargs)
        except (ChannelFault, KeyboardInterrupt):
            raise
        except BaseException as error:  # noqa: BLE001 -- the tests' object raised: the student's code sees it
            return {"error": wire.describe_error(error)}, {}
        return {}, {"value": result}


# The session of the test cell the judge is running, for helpers that take no handle.
_current: list[Session] = []


def current_session() -> Session | None:
    return _current[-1] if _current else None


@contextlib.contextmanager
def active(session: Session):
    _current.append(session)
    try:
        yield session
    finally:
        _current.pop()
