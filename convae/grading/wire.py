"""What crosses between the judge and the student's process, and how.

A message is one frame: an 8-byte header (two big-endian uint32, the lengths of the JSON part and
of the tensor part), a JSON object, and a safetensors blob holding every tensor the object refers
to. Nothing in a frame can run code when it is read: JSON is data, and safetensors is a JSON
header plus raw bytes that the library checks against each tensor's dtype and shape. Nothing is
ever pickled.

Values are tagged so that types survive the trip. By value: None, bool, int, float, str, and
tuples, lists and dicts of values; torch tensors (any subclass arrives as a plain, detached CPU
tensor), tensors of PyTorch's meta device (a dtype and a shape, no data: they stand in for a GPU
in checks that run on a CPU), numpy arrays and numpy scalars; torch dtypes and devices, slices
and ``...``. Anything
else is a *reference* that the sending side knows how to make and the receiving side how to read
(see ``Codec.reference`` / ``Codec.dereference``): the agent sends the student's objects as
handles, the judge sends its own objects as exposures.

The reader enforces ``Limits``: frame sizes, nesting depth and the number of items; whatever
breaks them, or is not well formed, raises ``ProtocolError``.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import sys
from dataclasses import dataclass

HEADER = struct.Struct(">II")


class ProtocolError(Exception):
    """The other side sent something that is not a well-formed message within the limits."""


@dataclass(frozen=True)
class Limits:
    json_bytes: int = 16 * 2**20
    tensor_bytes: int = 256 * 2**20
    depth: int = 32  # nesting of containers in one value
    items: int = 1_000_000  # elements of all containers of one message together


DEFAULT_LIMITS = Limits()


# --- framing ----------------------------------------------------------------------------------


def send_frame(sock: socket.socket, document: dict, blob: bytes = b"") -> None:
    text = json.dumps(document, allow_nan=False, separators=(",", ":")).encode()
    sock.sendall(HEADER.pack(len(text), len(blob)) + text + blob)


def receive_exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive_frame(sock: socket.socket, limits: Limits = DEFAULT_LIMITS) -> tuple[dict, bytes]:
    json_length, blob_length = HEADER.unpack(receive_exactly(sock, HEADER.size))
    if json_length > limits.json_bytes or blob_length > limits.tensor_bytes:
        raise ProtocolError(
            f"a message of {json_length + blob_length:,} bytes is over the limit "
            f"({limits.json_bytes:,} of JSON, {limits.tensor_bytes:,} of tensors)"
        )
    text = receive_exactly(sock, json_length)
    blob = receive_exactly(sock, blob_length) if blob_length else b""
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"the message is not valid JSON ({type(error).__name__})") from None
    if not isinstance(document, dict):
        raise ProtocolError("a message must be a JSON object")
    return document, blob


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


# --- values -----------------------------------------------------------------------------------

DEVICE_TYPES = ("cpu", "cuda", "mps", "meta", "xpu")


class Codec:
    """Turns values into tagged JSON and tensors, and back, for one message at a time.

    Subclasses decide what becomes of objects that are not values (``reference`` when sending,
    ``dereference`` when reading); by default both refuse.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS):
        self.limits = limits

    # sending -----------------------------------------------------------------------------
    def encode_message(self, document: dict, values: dict) -> tuple[dict, bytes]:
        """``document`` plus ``values`` (key -> value) encoded; returns (JSON object, blob)."""
        import safetensors.torch

        self._tensors: dict[str, object] = {}
        out = dict(document)
        for key, value in values.items():
            out[key] = self.encode(value, 0)
        blob = safetensors.torch.save(self._tensors) if self._tensors else b""
        self._tensors = {}
        return out, blob

    def encode(self, value, depth: int):
        if depth > self.limits.depth:
            raise ValueError(f"a value nested deeper than {self.limits.depth} levels cannot be sent")
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            return value if math.isfinite(value) else {"float": repr(value)}
        special = self.encode_special(value, depth)
        if special is not None:
            return special
        # Subclasses travel as their plain base type, read without calling their own methods.
        if isinstance(value, int):
            return int.__index__(value)
        if isinstance(value, float):
            return self.encode(float.__float__(value), depth)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, (list, tuple)):
            base = list if isinstance(value, list) else tuple
            return {base.__name__: [self.encode(v, depth + 1) for v in base.__iter__(value)]}
        if isinstance(value, dict):
            return {
                "dict": [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in dict.items(value)]
            }
        return self.reference(value)

    def encode_special(self, value, depth: int):
        """Tensors, numpy values, dtypes, devices, slices and ``...``; None for anything else."""
        torch = sys.modules.get("torch")
        numpy = sys.modules.get("numpy")
        if torch is not None:
            if isinstance(value, torch.Tensor):
                plain = torch.Tensor.as_subclass(value, torch.Tensor)
                if plain.is_meta:
                    return {"meta": [str(plain.dtype).removeprefix("torch."), list(plain.shape)]}
                return {"tensor": self.add_tensor(value)}
            if isinstance(value, torch.dtype):
                return {"dtype": str(value).removeprefix("torch.")}
            if isinstance(value, torch.device):
                return {"device": str(value)}
        if numpy is not None and torch is not None:
            if isinstance(value, numpy.ndarray) and value.dtype.kind in "biufc":
                return {"ndarray": self.add_tensor(torch.from_numpy(numpy.array(value, copy=True)))}
            if isinstance(value, numpy.generic) and numpy.dtype(type(value)).kind in "biufc":
                return {"npscalar": self.add_tensor(torch.from_numpy(numpy.array(value)))}
        if isinstance(value, slice):
            return {"slice": [self.encode(v, depth + 1) for v in (value.start, value.stop, value.step)]}
        if value is Ellipsis:
            return {"ellipsis": True}
        return None

    def add_tensor(self, tensor) -> str:
        import torch

        plain = torch.Tensor.as_subclass(tensor, torch.Tensor).detach()
        if plain.layout != torch.strided:
            plain = plain.to_dense()
        plain = plain.cpu().contiguous().clone()
        key = str(len(self._tensors))
        self._tensors[key] = plain
        return key

    def reference(self, value):
        raise TypeError(f"a {type(value).__name__} cannot be sent by value")

    # reading -----------------------------------------------------------------------------
    def decode_message(self, document: dict, blob: bytes, keys) -> dict:
        """The values under ``keys`` of a received document, decoded; raises ProtocolError."""
        import safetensors.torch

        try:
            self._received = safetensors.torch.load(blob) if blob else {}
        except Exception as error:  # noqa: BLE001 -- safetensors raises its own error types
            raise ProtocolError(f"the tensors of the message are not valid safetensors: {error}") from None
        self._items = 0
        try:
            return {key: self.decode(document[key], 0) for key in keys if key in document}
        finally:
            self._received = {}

    def decode(self, node, depth: int):
        if depth > self.limits.depth:
            raise ProtocolError(f"a value nested deeper than {self.limits.depth} levels")
        self._items += 1
        if self._items > self.limits.items:
            raise ProtocolError(f"a message with more than {self.limits.items:,} items")
        if node is None or type(node) in (bool, int, float, str):
            return node
        if type(node) is list:
            raise ProtocolError("an untagged JSON array")
        if type(node) is not dict or len(node) != 1:
            raise ProtocolError("a value must be a JSON scalar or a one-key tagged object")
        ((tag, body),) = node.items()
        if tag in ("list", "tuple"):
            items = [self.decode(v, depth + 1) for v in self._array(body, tag)]
            return items if tag == "list" else tuple(items)
        if tag == "dict":
            out = {}
            for pair in self._array(body, tag):
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("a dict entry must be a [key, value] pair")
                key = self.decode(pair[0], depth + 1)
                if not _hashable_value(key):
                    raise ProtocolError(f"a dict key of type {type(key).__name__}")
                out[key] = self.decode(pair[1], depth + 1)
            return out
        if tag == "float":
            if body not in ("nan", "inf", "-inf"):
                raise ProtocolError(f"an unknown float {body!r}")
            return float(body)
        if tag in ("tensor", "ndarray", "npscalar"):
            tensor = self._tensor(body)
            if tag == "tensor":
                return tensor
            array = tensor.numpy()
            return array if tag == "ndarray" else array[()]
        if tag == "meta":
            return _meta_tensor(body)
        if tag == "dtype":
            return _dtype(body)
        if tag == "device":
            return _device(body)
        if tag == "slice":
            parts = [self.decode(v, depth + 1) for v in self._array(body, tag)]
            if len(parts) != 3 or any(p is not None and type(p) is not int for p in parts):
                raise ProtocolError("a slice must hold three ints or nulls")
            return slice(*parts)
        if tag == "ellipsis":
            return Ellipsis
        return self.dereference(tag, body)

    def _array(self, body, tag):
        if type(body) is not list:
            raise ProtocolError(f"the body of {tag!r} must be a JSON array")
        return body

    def _tensor(self, key):
        if type(key) is not str or key not in self._received:
            raise ProtocolError(f"a tensor {key!r} that the message does not carry")
        return self._received[key]

    def dereference(self, tag, body):
        raise ProtocolError(f"an unknown tag {tag!r}")


def _hashable_value(key) -> bool:
    if key is None or type(key) in (bool, int, float, str):
        return True
    return type(key) is tuple and all(_hashable_value(k) for k in key)


def _dtype(name):
    import torch

    dtype = getattr(torch, name, None) if type(name) is str and name.isidentifier() else None
    if not isinstance(dtype, torch.dtype):
        raise ProtocolError(f"an unknown dtype {name!r}")
    return dtype


META_DIMS, META_SIZE = 16, 2**40


def _meta_tensor(body):
    """A tensor of the meta device, from ``[dtype, [sizes]]``: it holds no data, whatever its shape."""
    import torch

    if type(body) is not list or len(body) != 2 or type(body[1]) is not list or len(body[1]) > META_DIMS:
        raise ProtocolError(f"a meta tensor must be [dtype, [at most {META_DIMS} sizes]]")
    if any(type(size) is not int or not 0 <= size <= META_SIZE for size in body[1]):
        raise ProtocolError(f"a meta tensor's sizes must be ints from 0 to {META_SIZE}")
    return torch.empty(body[1], dtype=_dtype(body[0]), device="meta")


def _device(name):
    import torch

    if type(name) is not str or name.split(":")[0] not in DEVICE_TYPES or len(name) > 16:
        raise ProtocolError(f"an unknown device {name!r}")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ProtocolError(f"an unknown device {name!r}") from None


# --- requests and replies ---------------------------------------------------------------------


class Channel:
    """One connection used both ways.

    A request carries an ``id``; its reply carries ``reply: id``. While one side waits for its
    reply it serves the other side's requests (the judge's objects called back by student code),
    at most ``max_nesting`` deep. ``deadline`` (a ``time.monotonic()`` value, or None) bounds every
    wait; past it, ``TimeoutError``.
    """

    def __init__(
        self, sock: socket.socket, codec: Codec, serve, limits: Limits = DEFAULT_LIMITS, max_nesting=64
    ):
        self.sock = sock
        self.codec = codec
        self.serve = serve  # (document, blob) -> (reply document, reply values)
        self.limits = limits
        self.max_nesting = max_nesting
        self.deadline: float | None = None
        self._next_id = 0
        self._nesting = 0

    def _settimeout(self) -> None:
        import time

        if self.deadline is None:
            self.sock.settimeout(None)
        else:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            self.sock.settimeout(left)

    def send(self, document: dict, values: dict | None = None) -> None:
        document, blob = self.codec.encode_message(document, values or {})
        self._settimeout()
        send_frame(self.sock, document, blob)

    def receive(self) -> tuple[dict, bytes]:
        self._settimeout()
        return receive_frame(self.sock, self.limits)

    def request(self, document: dict, values: dict | None = None) -> tuple[dict, bytes]:
        """Send a request and return its reply (document, blob), serving requests meanwhile."""
        self._next_id += 1
        request_id = self._next_id
        self.send({"id": request_id, **document}, values)
        while True:
            message, blob = self.receive()
            if "reply" in message:
                if message["reply"] != request_id:
                    raise ProtocolError("a reply to a request that was not made")
                return message, blob
            if "op" not in message or type(message.get("id")) is not int:
                raise ProtocolError("a message that is neither a request nor a reply")
            self.serve_one(message, blob)

    def serve_one(self, message: dict, blob: bytes) -> None:
        if self._nesting >= self.max_nesting:
            raise ProtocolError(f"requests nested more than {self.max_nesting} deep")
        self._nesting += 1
        try:
            reply, values = self.serve(message, blob)
        finally:
            self._nesting -= 1
        try:
            document, blob = self.codec.encode_message({"reply": message["id"], **reply}, values)
        except Exception as error:  # noqa: BLE001 -- a result that cannot travel: say so instead
            refusal = {"reply": message["id"], "error": describe_error(error)}
            document, blob = self.codec.encode_message(refusal, {})
        self._settimeout()
        send_frame(self.sock, document, blob)


# --- errors as data ---------------------------------------------------------------------------

MESSAGE_CHARS = 2000


def describe_error(error: BaseException) -> dict:
    """An exception as plain data: its type's name, its nearest built-in base, its message."""
    import builtins

    builtin = next(
        (c.__name__ for c in type(error).__mro__ if getattr(builtins, c.__name__, None) is c),
        "Exception",
    )
    try:
        message = str(error)
    except Exception:  # noqa: BLE001 -- a message that cannot be made is no message
        message = ""
    return {"type": type(error).__name__[:100], "builtin": builtin, "message": message[:MESSAGE_CHARS]}
