"""Helpers for judges: shapes in words, what the student returned as a ``Found`` with
``need_kind`` / ``need_shape`` / ``need_dtype``, ``fail`` with a hint, and where two arrays differ."""
from __future__ import annotations

import numpy as np

from .registry import CheckFailed

def fmt_shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in np.asarray(shape).ravel()) + (",)" if np.size(shape) == 1 else ")")


INT_KINDS = ("int", "int64", "int32", "int16", "int8", "uint8", "uint16", "uint32", "uint64")  # kind() of an integer
KIND_NAMES = {"ndarray": "a NumPy array", "Tensor": "a torch tensor", "NoneType": "None", "tuple": "a tuple",
              "list": "a list", "int": "an int", "float": "a float", "str": "a string", "nothing": "missing"}


class Found:
    """What ``describe`` stored under ``name``: ``.kind``, ``.shape`` (tuple), ``.dtype``, ``.value``."""

    def __init__(self, data: dict, name: str, what: str):
        self.name, self.what = name, what
        self.kind = data.get(f"{name}.kind", "nothing")
        shape = data.get(f"{name}.shape")
        self.shape = None if shape is None else tuple(int(s) for s in np.atleast_1d(shape)) if np.size(shape) else ()
        self.dtype = data.get(f"{name}.dtype")
        self.value = data.get(f"{name}.value")
        self.requires_grad = data.get(f"{name}.requires_grad")

    def need_kind(self, *kinds: str, hint: str = "") -> "Found":
        if self.kind not in kinds:
            want = " or ".join(KIND_NAMES.get(k, f"a {k}") for k in kinds)
            raise CheckFailed(f"{self.what} should be {want}, but it is {KIND_NAMES.get(self.kind, f'a {self.kind}')}."
                              + (f"\nHint: {hint}" if hint else ""))
        return self

    def need_shape(self, expected: tuple, hint: str = "") -> "Found":
        if self.shape != tuple(expected):
            got = "no shape" if self.shape is None else f"shape {fmt_shape(self.shape)}"
            raise CheckFailed(f"{self.what} should have shape {fmt_shape(expected)}, but it has {got}."
                              + (f"\nHint: {hint}" if hint else ""))
        return self

    def need_dtype(self, expected: str, hint: str = "") -> "Found":
        if self.dtype != expected:
            raise CheckFailed(f"{self.what} should have dtype {expected}, but it has dtype {self.dtype}."
                              + (f"\nHint: {hint}" if hint else ""))
        return self


def fail(message: str, hint: str = "") -> None:
    """Raise CheckFailed(message + hint)."""
    raise CheckFailed(message + (f"\nHint: {hint}" if hint else ""))


def close(a, b, *, atol: float = 1e-6) -> bool:
    """Same shape and all values within ``atol``."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.allclose(a.astype(np.float64), b.astype(np.float64), atol=atol, rtol=0))


def where_differs(found, expected, *, atol: float = 1e-6) -> str:
    """'at index (i, j, ...): found x, expected y' for the first differing element."""
    f, e = np.asarray(found, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    bad = np.argwhere(~np.isclose(f, e, atol=atol, rtol=0))
    if not len(bad):
        return "no difference"
    idx = tuple(int(i) for i in bad[0])
    return f"at index {idx}: found {f[idx]:.6g}, expected {e[idx]:.6g} ({len(bad)} of {f.size} values differ)"
