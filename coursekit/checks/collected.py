"""What the student's code returned, as plain data: described (kind, shape, dtype, value) and
serialized with np.savez (no pickles), the same in the notebook and in the grader."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np


def kind(x) -> str:
    """A short type name: 'ndarray', 'Tensor', 'list', 'int', 'DataLoader', 'NoneType', ..."""
    return type(x).__name__


def describe(x, name: str, out: dict) -> dict:
    """Store what ``x`` is under keys ``name.kind``, ``name.shape``, ``name.dtype``, ``name.value``.

    ndarray / tensor: kind, shape (int array), dtype (e.g. 'float32', 'torch.float32'),
    value (a NumPy copy; torch tensors detached), requires_grad for tensors.
    Python numbers and strings: kind and value. Anything else: kind only.
    Returns ``out``.
    """
    out[f"{name}.kind"] = kind(x)
    if hasattr(x, "detach") and hasattr(x, "dtype") and hasattr(x, "shape"):   # a torch tensor
        out[f"{name}.shape"] = np.asarray(tuple(x.shape), dtype=np.int64)
        out[f"{name}.dtype"] = str(x.dtype)
        out[f"{name}.requires_grad"] = bool(getattr(x, "requires_grad", False))
        t = x.detach().cpu()
        out[f"{name}.value"] = t.float().numpy() if str(t.dtype) == "torch.bfloat16" else t.numpy().copy()
    elif isinstance(x, np.ndarray):
        out[f"{name}.shape"] = np.asarray(x.shape, dtype=np.int64)
        out[f"{name}.dtype"] = str(x.dtype)
        if x.dtype != object:
            out[f"{name}.value"] = x.copy()
    elif isinstance(x, (bool, int, float, str, np.generic)):
        out[f"{name}.value"] = x
    return out


def to_npz_bytes(data: dict) -> bytes:
    """Serialize collected data with np.savez (no pickles). Raises TypeError on object arrays."""
    arrays = {}
    for key, value in data.items():
        a = np.asarray(value)
        if a.dtype == object:
            raise TypeError(f"collected value {key!r} is not plain data ({type(value).__name__})")
        arrays[key] = a
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def from_npz(source) -> dict:
    """Load collected data (bytes or a path); 0-d arrays come back as Python scalars."""
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    with np.load(source, allow_pickle=False) as z:
        return {k: (z[k].item() if z[k].ndim == 0 else z[k]) for k in z.files}


def save(data: dict, path) -> Path:
    """Write collected data to ``path`` (an .npz file), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(to_npz_bytes(data))
    os.replace(tmp, path)
    return path
