"""Image data sets for the course: MNIST, Fashion-MNIST, CIFAR-10 and an embedded subset.

Every loader returns a :class:`Dataset` of float32 images in [0, 1] shaped (N, C, H, W), int64
labels, the class names and a ``source`` string saying where the data came from.

Where the files are looked for, in order:

1. the ``root`` argument, else the directory named by the environment variable ``CONVAE_DATA``
   (the files may sit in it directly or in a sub-directory named after the data set);
2. the user cache, ``~/.cache/convae/<dataset>/`` (``$XDG_CACHE_HOME/convae/<dataset>/``);
3. for Fashion-MNIST only, the Debian package ``dataset-fashion-mnist``;
4. a download from the official source into the user cache.

How files are trusted: a download must match the SHA-256 of the official archive before it is
kept; the Debian files are recompressed, so they are checked by the SHA-256 of their content;
files a user supplies are checked by structure (gzip CRC, IDX header, sizes, label range,
CIFAR keys and shapes). A file that fails raises :class:`CorruptDataError`, never a wrong tensor.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import pickle
import shutil
import struct
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from . import grading_mode

__all__ = [
    "CorruptDataError",
    "DataNotFoundError",
    "Dataset",
    "load_cifar10",
    "load_fashion_mnist",
    "load_fashion_mnist_subset",
    "load_images",
    "load_mnist",
    "read_idx_pair",
]


class DataNotFoundError(FileNotFoundError):
    """The data set is on none of the searched paths and could not be downloaded."""


class CorruptDataError(ValueError):
    """A data file is truncated, damaged, or not the file it claims to be."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images (N, C, H, W) float32 in [0, 1], labels (N,) int64, class names and provenance."""

    images: torch.Tensor = field(repr=False)
    labels: torch.Tensor = field(repr=False)
    classes: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        shape = "x".join(str(size) for size in self.images.shape)
        return f"Dataset({shape} images, {len(self.classes)} classes, source={self.source!r})"

    def loader(self, batch_size: int = 64, shuffle: bool = True, seed: int = 0) -> DataLoader:
        """A DataLoader of (image, label) batches; ``seed`` fixes the shuffling order."""
        generator = torch.Generator().manual_seed(seed)
        pairs = TensorDataset(self.images, self.labels)
        return DataLoader(pairs, batch_size=batch_size, shuffle=shuffle, generator=generator)


MNIST_CLASSES = tuple(str(digit) for digit in range(10))
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip

_TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}

# Tried in order. The Fashion-MNIST bucket serves plain http only; the SHA-256 check below is
# what makes that safe.
MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion_mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "cifar10": ("https://www.cs.toronto.edu/~kriz/",),
}

# SHA-256 of the official archives, as listed by tensorflow-datasets (url_checksums/mnist.txt,
# fashion_mnist.txt) and torchvision (prototype/datasets/_builtin/cifar.py, mnist.py); each
# matches the archive whose MD5 the authors publish (in comments).
ARCHIVE_SHA256 = {
    "mnist": {
        # md5 f68b3c2dcbeaaa9fbdd348bbdeb94873
        "train-images-idx3-ubyte.gz": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        # md5 d53e105ee54ea40749a09fcbcd1e9432
        "train-labels-idx1-ubyte.gz": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        # md5 9fb629c4189551a2d022fa330f9573f3
        "t10k-images-idx3-ubyte.gz": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        # md5 ec29112dd5afa0611ce80d1b7f02629c
        "t10k-labels-idx1-ubyte.gz": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    },
    "fashion_mnist": {
        # md5 8d4fb7e6c68d591d4c3dfef9ec88bf0d
        "train-images-idx3-ubyte.gz": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        # md5 25c81989df183df01b3e8a0aad5dffbe
        "train-labels-idx1-ubyte.gz": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        # md5 bef4ecab320f06d8554ea6380940ec79
        "t10k-images-idx3-ubyte.gz": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        # md5 bb300cfdad3c16e7a12a480ee83cd310
        "t10k-labels-idx1-ubyte.gz": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    },
    "cifar10": {
        # md5 c58f30108f718f92721af3b95e74349a
        "cifar-10-python.tar.gz": ("6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    },
}

# Debian recompresses the Fashion-MNIST archives, so their bytes differ from the official ones;
# the decompressed IDX files are identical, and these are their SHA-256.
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CONTENT_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# The embedded subset; tools/make_fashion_subset.py rebuilds it byte for byte.
FASHION_SUBSET_PATH = Path(__file__).parent / "assets" / "fashion_mnist_subset.npz"
FASHION_SUBSET_SHA256 = "bfe60f6b8a091261f64624f8bf802e93b87dca19ee735b52553b4a6d6ef1f749"

IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_FOLDER = "cifar-10-batches-py"
DOWNLOAD_TIMEOUT_SECONDS = 60
_SPLITS = ("train", "test")


# ----------------------------------------------------------------------------- public loaders


def load_mnist(split: str = "train", root: str | Path | None = None, download: bool = True) -> Dataset:
    """MNIST digits: images (N, 1, 28, 28) float32 in [0, 1], labels int64."""
    return _load_idx_dataset("mnist", split, root, download, MNIST_CLASSES)


def load_fashion_mnist(
    split: str = "train", root: str | Path | None = None, download: bool = True
) -> Dataset:
    """Fashion-MNIST: images (N, 1, 28, 28) float32 in [0, 1], labels int64."""
    return _load_idx_dataset("fashion_mnist", split, root, download, FASHION_MNIST_CLASSES)


def load_cifar10(split: str = "train", root: str | Path | None = None, download: bool = True) -> Dataset:
    """CIFAR-10 from the python pickle batches: images (N, 3, 32, 32) float32, labels int64."""
    _check_split(split)
    searched = _search_dirs("cifar10", root)
    for directory in searched:
        location = _cifar_location(directory)
        if location is not None:
            return _read_cifar(location, split, f"CIFAR-10 {split} split from {location}")
    if not download:
        raise _not_found("cifar10", split, [CIFAR_ARCHIVE], searched, None)
    urls = _download_missing("cifar10", split, [CIFAR_ARCHIVE], searched)
    archive = _cache_dir("cifar10") / CIFAR_ARCHIVE
    source = f"CIFAR-10 {split} split, downloaded from {' '.join(urls)} into {archive.parent}"
    return _read_cifar(archive, split, source)


def load_fashion_mnist_subset(split: str = "train") -> Dataset:
    """The embedded Fashion-MNIST subset: 500 (train) or 100 (test) real images per class."""
    _check_split(split)
    path = FASHION_SUBSET_PATH
    digest = _sha256_file(path)
    if digest != FASHION_SUBSET_SHA256:
        raise CorruptDataError(
            f"{path} has SHA-256 {digest}, expected {FASHION_SUBSET_SHA256}; the embedded "
            "subset was altered. Restore it (git checkout) or rebuild it with "
            "tools/make_fashion_subset.py."
        )
    with np.load(path, allow_pickle=False) as arrays:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    _check_pair(images, labels, (28, 28), 10, str(path))
    count = f"{len(labels):,} images, {len(labels) // 10} per class"
    source = f"embedded Fashion-MNIST subset, {split} split ({count}), from {path}"
    return _as_dataset(images[:, None], labels, FASHION_MNIST_CLASSES, source)


def load_images(name: str, split: str = "train", full: bool | None = None) -> Dataset:
    """Load a data set by name ("mnist", "fashion_mnist" or "cifar10") for a notebook.

    For Fashion-MNIST the embedded subset stands in while grading, or when the full set is
    nowhere to be found; ``full=True`` insists on the full set, ``full=False`` on the subset.
    ``Dataset.source`` says which one you got.
    """
    loaders = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist, "cifar10": load_cifar10}
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(loaders)}")
    if name != "fashion_mnist":
        if full is False:
            raise ValueError(f"only fashion_mnist has an embedded subset, not {name!r}")
        return loaders[name](split)
    if full is False:
        return load_fashion_mnist_subset(split)
    if full is None and grading_mode():
        subset = load_fashion_mnist_subset(split)
        return replace(subset, source=subset.source + " (grading mode uses the subset)")
    try:
        return load_fashion_mnist(split)
    except DataNotFoundError:
        if full:
            raise
    subset = load_fashion_mnist_subset(split)
    note = " (full Fashion-MNIST not found: set CONVAE_DATA or see convae.data)"
    return replace(subset, source=subset.source + note)


def read_idx_pair(
    images_path: Path, labels_path: Path, verify_content: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, 28, 28) and labels (N,) from a pair of IDX files (.gz or plain).

    ``verify_content`` checks the decompressed bytes against the known Fashion-MNIST SHA-256.
    """
    images = _read_idx(Path(images_path), IDX_IMAGES_MAGIC, verify_content)
    labels = _read_idx(Path(labels_path), IDX_LABELS_MAGIC, verify_content)
    _check_pair(images, labels, (28, 28), 10, f"{images_path} / {labels_path}")
    return images, labels


# ----------------------------------------------------------------------------- where to look


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, not {split!r}")


def _cache_dir(name: str) -> Path:
    # XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "convae" / name


def _search_dirs(name: str, root: str | Path | None) -> list[Path]:
    base = root if root is not None else os.environ.get("CONVAE_DATA")
    dirs = []
    if base:
        base = Path(base).expanduser()
        dirs += [base, base / name]
    dirs.append(_cache_dir(name))
    if name == "fashion_mnist":
        dirs.append(DEBIAN_FASHION_DIR)
    return dirs


def _idx_filenames(split: str) -> list[str]:
    prefix = "train" if split == "train" else "t10k"
    return [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]


def _find_file(directory: Path, filename: str) -> Path | None:
    # Accept the archive as published or already gunzipped.
    for candidate in (directory / filename, directory / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _cifar_location(directory: Path) -> Path | None:
    if (directory / CIFAR_FOLDER).is_dir():
        return directory / CIFAR_FOLDER
    if (directory / CIFAR_ARCHIVE).is_file():
        return directory / CIFAR_ARCHIVE
    return None


def _load_idx_dataset(name, split, root, download, classes) -> Dataset:
    _check_split(split)
    filenames = _idx_filenames(split)
    searched = _search_dirs(name, root)
    for directory in searched:
        paths = [_find_file(directory, filename) for filename in filenames]
        if all(paths):
            images, labels = read_idx_pair(*paths, verify_content=directory == DEBIAN_FASHION_DIR)
            source = f"{_TITLES[name]} {split} split from {directory}"
            return _as_dataset(images[:, None], labels, classes, source)
    if not download:
        raise _not_found(name, split, filenames, searched, None)
    urls = _download_missing(name, split, filenames, searched)
    cache = _cache_dir(name)
    images, labels = read_idx_pair(*(_find_file(cache, filename) for filename in filenames))
    origin = f"downloaded from {', '.join(urls)} into {cache}" if urls else f"from {cache}"
    return _as_dataset(images[:, None], labels, classes, f"{_TITLES[name]} {split} split {origin}")


def _not_found(name, split, filenames, searched, failures) -> DataNotFoundError:
    title = _TITLES[name]
    lines = [f"{title} ({split} split) was not found. Looked for {', '.join(filenames)} in:"]
    lines += [f"  {directory}" for directory in searched]
    if failures is None:
        lines.append("Downloading was switched off (download=False).")
    else:
        lines.append("Downloading failed:")
        lines += [f"  {failure}" for failure in failures]
    urls = " ".join(MIRRORS[name][0] + filename for filename in filenames)
    lines.append(
        f"To fix this, download {urls} and put the file(s) in {_cache_dir(name)}, or in a "
        "directory that you name with the environment variable CONVAE_DATA (or pass root=...)."
    )
    if name == "fashion_mnist":
        lines.append("On Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist")
    return DataNotFoundError("\n".join(lines))


# ----------------------------------------------------------------------------- downloading


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_missing(name: str, split: str, filenames: list[str], searched) -> list[str]:
    """Download whichever of ``filenames`` the user cache lacks; return the URLs used."""
    cache = _cache_dir(name)
    urls = []
    try:
        for filename in filenames:
            if _find_file(cache, filename) is None:
                urls.append(_download_from_mirrors(name, filename, cache / filename))
    except _DownloadFailed as failed:
        raise _not_found(name, split, filenames, searched, failed.failures) from None
    return urls


class _DownloadFailed(Exception):
    def __init__(self, failures: list[str]):
        super().__init__("; ".join(failures))
        self.failures = failures


def _download_from_mirrors(name: str, filename: str, destination: Path) -> str:
    """Download ``filename`` into ``destination``, trying each mirror; return the URL used."""
    failures = []
    for base in MIRRORS[name]:
        url = base + filename
        try:
            _download_verified(url, destination, ARCHIVE_SHA256[name][filename])
            return url
        except (OSError, http.client.HTTPException) as error:
            failures.append(f"{url}: {error}")
    raise _DownloadFailed(failures)


def _download_verified(url: str, destination: Path, sha256: str) -> None:
    # Write to a temporary name beside the target and rename only once the checksum matches,
    # so an interrupted or tampered download never looks like a cached file.
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=destination.name, suffix=".part", dir=destination.parent)
    try:
        with (
            os.fdopen(handle, "wb") as out,
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response,
        ):
            shutil.copyfileobj(response, out, 1 << 20)
        digest = _sha256_file(Path(temporary))
        if digest != sha256:
            raise CorruptDataError(
                f"download of {url} has SHA-256 {digest}, expected {sha256}; it was discarded. "
                "The server or something in between sent a different file."
            )
        os.replace(temporary, destination)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


# ----------------------------------------------------------------------------- IDX files


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except (OSError, EOFError, zlib.error) as error:
        raise CorruptDataError(
            f"{path} is not a complete gzip file ({error}); delete it and fetch it again"
        ) from error


def _read_idx(path: Path, magic: int, verify_content: bool) -> np.ndarray:
    raw = _read_bytes(path)
    if verify_content:
        expected = FASHION_CONTENT_SHA256[path.name.removesuffix(".gz")]
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected:
            raise CorruptDataError(f"{path} decompresses to SHA-256 {digest}, expected {expected}")
    return _parse_idx(raw, magic, str(path))


def _parse_idx(raw: bytes, magic: int, where: str) -> np.ndarray:
    ndim = 3 if magic == IDX_IMAGES_MAGIC else 1
    kind = "images" if magic == IDX_IMAGES_MAGIC else "labels"
    header = 4 * (1 + ndim)
    found = struct.unpack(">I", raw[:4])[0] if len(raw) >= 4 else None
    if found != magic:
        raise CorruptDataError(f"{where}: IDX magic number {found}, expected {magic} for {kind}; wrong file?")
    if len(raw) < header:
        raise CorruptDataError(f"{where}: {len(raw)} bytes is too short for an IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + math.prod(dims)
    if len(raw) != expected:
        raise CorruptDataError(
            f"{where}: header declares {kind} of shape {tuple(dims)}, which is {expected} "
            f"bytes, but the file holds {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _check_pair(images, labels, image_shape, num_classes, where) -> None:
    if images.dtype != np.uint8 or tuple(images.shape[1:]) != image_shape:
        raise CorruptDataError(
            f"{where}: images are {images.dtype} {tuple(images.shape)}, expected uint8 "
            f"(N, {', '.join(map(str, image_shape))})"
        )
    if labels.ndim != 1 or len(images) != len(labels):
        raise CorruptDataError(f"{where}: {len(images)} images but {len(labels)} labels; they must pair up")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise CorruptDataError(
            f"{where}: labels run from {labels.min()} to {labels.max()}, expected 0 to {num_classes - 1}"
        )


def _as_dataset(images_u8, labels, classes, source) -> Dataset:
    images = torch.from_numpy(images_u8.astype(np.float32)).div_(255.0)
    labels = torch.from_numpy(np.asarray(labels).astype(np.int64))
    return Dataset(images, labels, tuple(classes), source)


# ----------------------------------------------------------------------------- CIFAR-10


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches but refuses every global except the numpy pieces they use.

    A pickle can run any code while it loads; this keeps a doctored file from doing so.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),  # as written by numpy 1.x (the real files)
        ("numpy._core.multiarray", "_reconstruct"),  # as written by numpy 2.x
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(raw: bytes, where: str) -> dict:
    try:
        # The batches were pickled by Python 2: encoding="bytes" keeps their str as bytes.
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as error:  # a damaged pickle can fail in many ways; all mean corrupt
        raise CorruptDataError(f"{where}: not a readable CIFAR-10 pickle ({error})") from error
    if not isinstance(batch, dict):
        raise CorruptDataError(f"{where}: holds a {type(batch).__name__}, expected a dict")
    return batch


def _read_cifar_members(location: Path, names: list[str]) -> dict[str, bytes]:
    if location.is_dir():
        missing = [name for name in names if not (location / name).is_file()]
        if missing:
            raise CorruptDataError(f"{location}: missing {', '.join(missing)}")
        return {name: (location / name).read_bytes() for name in names}
    wanted = {f"{CIFAR_FOLDER}/{name}": name for name in names}
    found = {}
    try:
        # Stream through the archive once: seeking back in a .tar.gz means decompressing again.
        with tarfile.open(location, "r|gz") as archive:
            for member in archive:
                if member.name in wanted and member.isfile():
                    found[wanted[member.name]] = archive.extractfile(member).read()
                if len(found) == len(wanted):
                    break
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise CorruptDataError(f"{location} is not a complete tar.gz archive ({error})") from error
    missing = [name for name in names if name not in found]
    if missing:
        raise CorruptDataError(f"{location}: archive lacks {CIFAR_FOLDER}/{', '.join(missing)}")
    return found


def _cifar_batch_arrays(batch: dict, where: str) -> tuple[np.ndarray, np.ndarray]:
    if b"data" not in batch or b"labels" not in batch:
        raise CorruptDataError(f"{where}: keys {sorted(batch)}, expected b'data' and b'labels'")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", type(data).__name__)
        raise CorruptDataError(f"{where}: data is {shape}, expected a (N, 3072) array")
    if not np.issubdtype(labels.dtype, np.integer):
        raise CorruptDataError(f"{where}: labels are {labels.dtype}, expected integers")
    images = data.reshape(-1, 3, 32, 32)  # each row is 1024 red, then green, then blue bytes
    _check_pair(images, labels, (3, 32, 32), 10, where)
    return images, labels


def _cifar_classes(meta: dict, where: str) -> tuple[str, ...]:
    names = meta.get(b"label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise CorruptDataError(f"{where}: expected 10 names under b'label_names', got {names!r}")
    return tuple(n.decode("ascii") if isinstance(n, bytes) else str(n) for n in names)


def _read_cifar(location: Path, split: str, source: str) -> Dataset:
    batch_names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    members = _read_cifar_members(location, batch_names + ["batches.meta"])
    meta_where = f"{location}: batches.meta"
    classes = _cifar_classes(_unpickle(members["batches.meta"], meta_where), meta_where)
    images, labels = [], []
    for name in batch_names:
        where = f"{location}: {name}"
        batch_images, batch_labels = _cifar_batch_arrays(_unpickle(members.pop(name), where), where)
        images.append(batch_images)
        labels.append(batch_labels)
    return _as_dataset(np.concatenate(images), np.concatenate(labels), classes, source)
