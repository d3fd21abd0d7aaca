"""Tests for convae.data: the loaders, downloads, corruption checks and the embedded subset.

Small files in the real formats are written to tmp_path; downloads are served by a local HTTP
server on 127.0.0.1, so no test reaches the internet.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import io
import pickle
import shutil
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from convae import data

REAL_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there once the socket is closed


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test sees the real cache, CONVAE_DATA, grading mode, the Debian files or the net."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONVAE_DATA", raising=False)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", tmp_path / "no-debian")
    offline = _closed_port_url()
    monkeypatch.setattr(data, "MIRRORS", {name: (offline,) for name in data.MIRRORS})


def cache_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / "cache" / "convae" / name


# ----------------------------------------------------------------------------- file writers


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = magic or (2051 if array.ndim == 3 else 2049)
    header = struct.pack(f">{1 + array.ndim}I", magic, *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_split(directory: Path, split: str = "train", n: int = 6, seed: int = 0):
    """Write an IDX image/label pair in `directory`; return the uint8 arrays written."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[0, 27, 27] = 0, 255  # the extremes, for the range checks
    labels = (np.arange(n) * 3 % 10).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (directory / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    return images, labels


def _py2_str(raw: bytes) -> bytes:
    # Python 2 pickled str as SHORT_BINSTRING / BINSTRING; encoding="bytes" reads them as bytes.
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw
    return b"T" + struct.pack("<I", len(raw)) + raw


def _py2_int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _py2_array(array: np.ndarray) -> bytes:
    """A uint8 ndarray as numpy 1.x on Python 2 pickled it (protocol 2), like the real batches."""
    dtype = (
        b"cnumpy\ndtype\n" + _py2_str(b"u1") + _py2_int(0) + _py2_int(1) + b"\x87R("
        + _py2_int(3) + _py2_str(b"|") + b"NNN" + _py2_int(-1) + _py2_int(-1) + _py2_int(0)
        + b"tb"
    )  # fmt: skip
    shape = b"(" + b"".join(_py2_int(size) for size in array.shape) + b"t"
    return (
        b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n(" + _py2_int(0) + b"t"
        + _py2_str(b"b") + b"\x87R(" + _py2_int(1) + shape + dtype + b"\x89"
        + _py2_str(array.tobytes()) + b"tb"
    )  # fmt: skip


def py2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR-10 batch pickle: {b"data": (N, 3072) uint8, b"labels": [int], b"batch_label"}."""
    items = _py2_str(b"batch_label") + _py2_str(b"testing batch 1 of 1")
    items += _py2_str(b"data") + _py2_array(images.reshape(len(images), -1))
    items += _py2_str(b"labels") + b"](" + b"".join(_py2_int(label) for label in labels) + b"e"
    return b"\x80\x02}(" + items + b"u."


def py2_meta(names: list[str]) -> bytes:
    listed = b"](" + b"".join(_py2_str(name.encode()) for name in names) + b"e"
    return b"\x80\x02}(" + _py2_str(b"label_names") + listed + _py2_str(b"num_vis") + (_py2_int(3072) + b"u.")


def cifar_members(per_batch: int = 2, seed: int = 0) -> tuple[dict[str, bytes], dict]:
    """The files of cifar-10-batches-py and the arrays they hold."""
    rng = np.random.default_rng(seed)
    members, arrays = {"batches.meta": py2_meta(list(data.CIFAR10_CLASSES))}, {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for number, name in enumerate(names):
        images = rng.integers(0, 256, size=(per_batch, 3, 32, 32), dtype=np.uint8)
        labels = [(number + i) % 10 for i in range(per_batch)]
        members[name] = py2_batch(images, labels)
        arrays[name] = (images, labels)
    return members, arrays


def write_cifar_archive(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            archive.addfile(info, io.BytesIO(raw))
    return path


# ----------------------------------------------------------------------------- IDX loaders


def test_mnist_from_root_has_exact_pixels_and_labels(tmp_path):
    images, labels = write_idx_split(tmp_path / "data")
    dataset = data.load_mnist("train", root=tmp_path / "data", download=False)
    assert dataset.images.shape == (6, 1, 28, 28) and dataset.images.dtype == torch.float32
    assert dataset.labels.shape == (6,) and dataset.labels.dtype == torch.int64
    assert dataset.images.min() == 0.0 and dataset.images.max() == 1.0
    assert torch.equal(dataset.images[:, 0], torch.from_numpy(images).float() / 255)
    assert dataset.labels.tolist() == labels.tolist()
    assert dataset.classes == tuple("0123456789") and len(dataset) == 6
    assert str(tmp_path / "data") in dataset.source


def test_fashion_test_split_from_convae_data_subdirectory(tmp_path, monkeypatch):
    images, labels = write_idx_split(tmp_path / "all" / "fashion_mnist", split="test", n=4)
    monkeypatch.setenv("CONVAE_DATA", str(tmp_path / "all"))
    dataset = data.load_fashion_mnist("test", download=False)
    assert torch.equal((dataset.images[:, 0] * 255).round().to(torch.uint8), torch.from_numpy(images))
    assert dataset.labels.tolist() == labels.tolist()
    assert dataset.classes[0] == "T-shirt/top" and dataset.classes[9] == "Ankle boot"


def test_gunzipped_idx_files_are_accepted(tmp_path):
    images, labels = write_idx_split(tmp_path)
    for path in tmp_path.glob("*.gz"):
        path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
        path.unlink()
    dataset = data.load_mnist(root=tmp_path, download=False)
    assert dataset.labels.tolist() == labels.tolist()


def test_root_comes_before_the_cache_and_the_cache_before_download(tmp_path):
    write_idx_split(cache_dir(tmp_path, "mnist"), n=3)
    write_idx_split(tmp_path / "root", n=5)
    assert len(data.load_mnist(root=tmp_path / "root")) == 5
    from_cache = data.load_mnist(root=tmp_path / "empty")
    assert len(from_cache) == 3 and str(cache_dir(tmp_path, "mnist")) in from_cache.source


def test_bad_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        data.load_mnist("validation")


# ----------------------------------------------------------------------------- CIFAR-10


def test_cifar10_from_the_archive_keeps_channels_and_rows(tmp_path):
    members, arrays = cifar_members()
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", members)
    train = data.load_cifar10("train", root=tmp_path, download=False)
    assert train.images.shape == (10, 3, 32, 32) and train.images.dtype == torch.float32
    expected = np.concatenate([arrays[f"data_batch_{i}"][0] for i in range(1, 6)])
    assert torch.equal(train.images, torch.from_numpy(expected).float() / 255)
    assert train.labels.tolist() == sum((arrays[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert train.classes == data.CIFAR10_CLASSES
    test = data.load_cifar10("test", root=tmp_path, download=False)
    assert len(test) == 2 and test.labels.tolist() == arrays["test_batch"][1]


def test_cifar10_row_layout_is_red_then_green_then_blue():
    row = np.zeros((1, 3072), dtype=np.uint8)
    row[0, 1024 + 32 * 5 + 7] = 255  # green channel, row 5, column 7
    images, _ = data._cifar_batch_arrays(data._unpickle(py2_batch(row, [4]), "t"), "t")
    assert images.shape == (1, 3, 32, 32) and images[0, 1, 5, 7] == 255 and images.sum() == 255


def test_cifar10_from_an_extracted_folder_written_by_python3(tmp_path):
    folder = tmp_path / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    images = np.arange(2 * 3072, dtype=np.uint64).astype(np.uint8).reshape(2, 3072)
    batch = pickle.dumps({b"data": images, b"labels": [1, 2]}, protocol=4)
    for name in ["test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (folder / name).write_bytes(batch)
    names = [name.encode() for name in data.CIFAR10_CLASSES]
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    dataset = data.load_cifar10("test", root=tmp_path, download=False)
    assert dataset.labels.tolist() == [1, 2]
    assert dataset.images[1, 2, 31, 31] == images[1, 3071] / 255


# ----------------------------------------------------------------------------- downloads


@pytest.fixture
def server(tmp_path):
    """Serve tmp_path/served on 127.0.0.1; yields (directory, base URL)."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def pin_checksums(monkeypatch, name: str, directory: Path, sha256=None):
    pinned = {
        path.name: sha256 or hashlib.sha256(path.read_bytes()).hexdigest() for path in directory.iterdir()
    }
    monkeypatch.setitem(data.ARCHIVE_SHA256, name, pinned)


def test_download_is_verified_cached_and_falls_back_to_the_next_mirror(tmp_path, monkeypatch, server):
    served, url = server
    images, labels = write_idx_split(served, n=4)
    pin_checksums(monkeypatch, "mnist", served)
    monkeypatch.setitem(data.MIRRORS, "mnist", (_closed_port_url(), url))
    dataset = data.load_mnist("train")
    assert dataset.labels.tolist() == labels.tolist() and url in dataset.source
    cache = cache_dir(tmp_path, "mnist")
    assert sorted(path.name for path in cache.iterdir()) == sorted(p.name for p in served.iterdir())
    shutil.rmtree(served)  # the second load must come from the cache alone
    assert str(cache) in data.load_mnist("train").source


def test_download_with_a_wrong_checksum_is_rejected_and_not_kept(tmp_path, monkeypatch, server):
    served, url = server
    write_idx_split(served, split="test")
    pin_checksums(monkeypatch, "fashion_mnist", served, sha256="0" * 64)
    monkeypatch.setitem(data.MIRRORS, "fashion_mnist", (url,))
    with pytest.raises(data.CorruptDataError, match="SHA-256") as raised:
        data.load_fashion_mnist("test")
    assert url in str(raised.value) and "discarded" in str(raised.value)
    cache = cache_dir(tmp_path, "fashion_mnist")
    assert not cache.exists() or list(cache.iterdir()) == []


def test_cifar10_download(tmp_path, monkeypatch, server):
    served, url = server
    members, arrays = cifar_members(per_batch=3)
    write_cifar_archive(served / "cifar-10-python.tar.gz", members)
    pin_checksums(monkeypatch, "cifar10", served)
    monkeypatch.setitem(data.MIRRORS, "cifar10", (url,))
    dataset = data.load_cifar10("test")
    assert dataset.labels.tolist() == arrays["test_batch"][1] and "downloaded" in dataset.source
    assert (cache_dir(tmp_path, "cifar10") / "cifar-10-python.tar.gz").is_file()


# ----------------------------------------------------------------------------- not found


def test_offline_error_names_every_path_the_url_and_the_fix(tmp_path):
    with pytest.raises(data.DataNotFoundError) as raised:
        data.load_fashion_mnist("train", root=tmp_path / "mine")
    message = str(raised.value)
    assert isinstance(raised.value, FileNotFoundError)
    for path in (
        tmp_path / "mine",
        tmp_path / "mine" / "fashion_mnist",
        cache_dir(tmp_path, "fashion_mnist"),
        tmp_path / "no-debian",
    ):
        assert f"  {path}\n" in message
    assert data.MIRRORS["fashion_mnist"][0] + "train-images-idx3-ubyte.gz" in message
    assert "CONVAE_DATA" in message and "apt-get install dataset-fashion-mnist" in message


def test_no_download_says_so(tmp_path):
    with pytest.raises(data.DataNotFoundError, match="download=False") as raised:
        data.load_cifar10("test", download=False)
    assert str(cache_dir(tmp_path, "cifar10")) in str(raised.value)
    assert "cifar-10-python.tar.gz" in str(raised.value)


# ----------------------------------------------------------------------------- corrupt files


def _truncate_gzip(directory):
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-100])


def _wrong_magic(directory):
    # a labels file where the images should be
    labels = directory / "train-labels-idx1-ubyte.gz"
    shutil.copy(labels, directory / "train-images-idx3-ubyte.gz")


def _count_mismatch(directory):
    labels = np.zeros(5, dtype=np.uint8)  # 6 images
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))


def _byte_count_mismatch(directory):
    raw = idx_bytes(np.zeros((6, 28, 28), dtype=np.uint8))[:-28]
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))


def _label_out_of_range(directory):
    labels = np.full(6, 10, dtype=np.uint8)
    (directory / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))


def _wrong_image_size(directory):
    raw = idx_bytes(np.zeros((6, 32, 32), dtype=np.uint8))
    (directory / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_truncate_gzip, "gzip"),
        (_wrong_magic, "magic number 2049, expected 2051"),
        (_count_mismatch, "6 images but 5 labels"),
        (_byte_count_mismatch, "4720 bytes, but the file holds 4692"),
        (_label_out_of_range, "labels run from 10 to 10"),
        (_wrong_image_size, "expected uint8"),
    ],
)
def test_corrupt_idx_files_raise(tmp_path, damage, message):
    write_idx_split(tmp_path)
    damage(tmp_path)
    with pytest.raises(data.CorruptDataError, match=message):
        data.load_mnist(root=tmp_path, download=False)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize(
    ("member", "raw", "message"),
    [
        ("test_batch", b"\x80\x02}(garbage", "not a readable CIFAR-10 pickle"),
        ("test_batch", pickle.dumps({b"data": np.zeros((1, 3072), np.uint8)}), "b'labels'"),
        (
            "test_batch",
            pickle.dumps({b"data": np.zeros((1, 100), np.uint8), b"labels": [0]}),
            r"expected a \(N, 3072\) array",
        ),  # fmt: skip
        (
            "test_batch",
            pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}),
            "2 images but 1 labels",
        ),  # fmt: skip
        ("test_batch", pickle.dumps([1, 2, 3]), "expected a dict"),
        ("test_batch", pickle.dumps({b"data": _Evil()}), "refusing to load builtins.print"),
        ("batches.meta", pickle.dumps({b"label_names": [b"cat"]}), "expected 10 names"),
    ],
)
def test_bad_cifar_pickles_raise(tmp_path, capsys, member, raw, message):
    members, _ = cifar_members()
    members[member] = raw
    write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", members)
    with pytest.raises(data.CorruptDataError, match=message):
        data.load_cifar10("test", root=tmp_path, download=False)
    assert "must never run" not in capsys.readouterr().out


def test_truncated_or_incomplete_cifar_archive_raises(tmp_path):
    members, _ = cifar_members()
    archive = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", members)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(data.CorruptDataError, match="tar.gz"):
        data.load_cifar10("train", root=tmp_path, download=False)
    del members["data_batch_3"]
    write_cifar_archive(archive, members)
    with pytest.raises(data.CorruptDataError, match="lacks cifar-10-batches-py/data_batch_3"):
        data.load_cifar10("train", root=tmp_path, download=False)


# ----------------------------------------------------------------------------- embedded subset


def test_embedded_subset_is_verified_and_stratified():
    assert hashlib.sha256(data.FASHION_SUBSET_PATH.read_bytes()).hexdigest() == (data.FASHION_SUBSET_SHA256)
    for split, per_class in (("train", 500), ("test", 100)):
        subset = data.load_fashion_mnist_subset(split)
        assert subset.images.shape == (10 * per_class, 1, 28, 28)
        assert subset.images.dtype == torch.float32 and subset.labels.dtype == torch.int64
        assert subset.labels.bincount(minlength=10).tolist() == [per_class] * 10
        assert 0.0 <= subset.images.min() and subset.images.max() <= 1.0
        assert subset.images.max() == 1.0 and "embedded" in subset.source
        assert subset.classes == data.FASHION_MNIST_CLASSES


def test_tampered_subset_is_rejected(tmp_path, monkeypatch):
    tampered = tmp_path / "fashion_mnist_subset.npz"
    raw = bytearray(data.FASHION_SUBSET_PATH.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    tampered.write_bytes(bytes(raw))
    monkeypatch.setattr(data, "FASHION_SUBSET_PATH", tampered)
    with pytest.raises(data.CorruptDataError, match="altered"):
        data.load_fashion_mnist_subset("train")


# ----------------------------------------------------------------------------- load_images


def test_grading_mode_returns_the_subset_even_when_the_full_set_is_there(tmp_path, monkeypatch):
    write_idx_split(tmp_path / "full")
    monkeypatch.setenv("CONVAE_DATA", str(tmp_path / "full"))
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    dataset = data.load_images("fashion_mnist", "train")
    assert len(dataset) == 5000 and "grading mode" in dataset.source
    assert len(data.load_images("fashion_mnist", "train", full=True)) == 6


def test_load_images_prefers_the_full_set_then_falls_back(tmp_path, monkeypatch):
    with pytest.raises(data.DataNotFoundError):
        data.load_images("fashion_mnist", "test", full=True)
    fallback = data.load_images("fashion_mnist", "test")
    assert len(fallback) == 1000 and "not found" in fallback.source
    write_idx_split(tmp_path / "full", split="test", n=7)
    monkeypatch.setenv("CONVAE_DATA", str(tmp_path / "full"))
    assert len(data.load_images("fashion_mnist", "test")) == 7
    assert len(data.load_images("fashion_mnist", "test", full=False)) == 1000
    assert data.load_images("mnist", "test").classes == data.MNIST_CLASSES


def test_load_images_refuses_unknown_names_and_missing_subsets():
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_images("svhn")
    with pytest.raises(ValueError, match="only fashion_mnist"):
        data.load_images("cifar10", full=False)


# ----------------------------------------------------------------------------- Dataset


def test_loader_batches_pairs_in_a_seeded_order(tmp_path):
    write_idx_split(tmp_path, n=10)
    dataset = data.load_mnist(root=tmp_path)
    batches = list(dataset.loader(batch_size=4, shuffle=True, seed=3))
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert batches[0][0].shape == (4, 1, 28, 28)
    again = list(dataset.loader(batch_size=4, shuffle=True, seed=3))
    assert all(torch.equal(a[1], b[1]) for a, b in zip(batches, again, strict=True))
    in_order = torch.cat([labels for _, labels in dataset.loader(batch_size=4, shuffle=False)])
    assert torch.equal(in_order, dataset.labels)
    assert "10x1x28x28" in repr(dataset) and "tensor" not in repr(dataset)


# ----------------------------------------------------------------------------- real files


@pytest.mark.system("dataset-fashion-mnist")
def test_real_debian_fashion_mnist(monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", REAL_DEBIAN_DIR)
    train = data.load_fashion_mnist("train", download=False)
    test = data.load_fashion_mnist("test", download=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert train.labels.bincount().tolist() == [6000] * 10
    assert train.classes[9] == "Ankle boot" and str(REAL_DEBIAN_DIR) in train.source
    # the embedded subset is exactly the rows it says it took
    with np.load(data.FASHION_SUBSET_PATH) as arrays:
        rows = torch.from_numpy(arrays["train_indices"].astype(np.int64))
    subset = data.load_fashion_mnist_subset("train")
    assert torch.equal(train.images[rows], subset.images)
    assert torch.equal(train.labels[rows], subset.labels)
