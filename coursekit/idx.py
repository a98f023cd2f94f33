"""Read and write the IDX files MNIST is distributed in (big-endian header, then raw bytes).

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions,
then one big-endian uint32 per dimension. Images: (N, 28, 28) uint8; labels: (N,) uint8.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

UINT8 = 0x08


class IdxError(ValueError):
    """The file is not a well-formed uint8 IDX file."""


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Decode IDX bytes.

    raw: the whole file's bytes.
    Returns: uint8 array of the shape in the header, e.g. (N, 28, 28) or (N,).
    Raises IdxError naming ``name`` if the header or length is wrong.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise IdxError(f"{name}: not an IDX file (bad magic number)")
    if raw[2] != UINT8:
        raise IdxError(f"{name}: IDX type code {raw[2]:#x}, expected uint8 (0x08)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IdxError(f"{name}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(raw) != expected:
        raise IdxError(f"{name}: {len(raw)} bytes, expected {expected} for shape {shape} (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (see ``parse_idx``). Returns a writable uint8 array."""
    path = Path(path)
    return parse_idx(path.read_bytes(), path.name).copy()


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array of any shape as IDX bytes."""
    if array.dtype != np.uint8:
        raise IdxError(f"IDX encoding needs uint8, got {array.dtype}")
    header = bytes([0, 0, UINT8, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file, atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(encode_idx(array))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data caches are shared read-only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
