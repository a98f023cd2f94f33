"""A submitted notebook as the host reads it, before anything runs: present, a regular file,
within the size cap, UTF-8 JSON that nbformat accepts."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

MAX_NOTEBOOK_BYTES = 50 << 20        # a submitted notebook larger than this is refused
MAX_CELLS = 2000                     # a lesson has about 35: 60,000 empty cells held a worker 12 minutes


def read_submission(path: Path) -> tuple[bytes | None, tuple[str, str]]:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, ("missing", f"no notebook at {path.name}")
    except OSError as err:
        return None, ("missing", f"cannot read {path.name}: {err.strerror}")
    if not stat.S_ISREG(st.st_mode):
        return None, ("missing", f"{path.name} is not a regular file")
    if st.st_size > MAX_NOTEBOOK_BYTES:
        return None, ("invalid_notebook", f"{path.name} is {st.st_size} bytes, over the "
                      f"{MAX_NOTEBOOK_BYTES} byte limit for a notebook")
    try:
        with open(path, "rb") as f:
            return f.read(MAX_NOTEBOOK_BYTES + 1), ("", "")
    except OSError as err:
        return None, ("missing", f"cannot read {path.name}: {err.strerror}")


def parse_notebook(raw: bytes) -> tuple[dict | None, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, f"the notebook is not UTF-8 text (byte {err.start})"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, f"the notebook is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
    except RecursionError:
        return None, "the notebook is not valid JSON: nested too deeply"
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        return None, "the file is JSON but not a notebook (no list of cells)"
    if data.get("nbformat") != 4:
        return None, f"unsupported notebook format {data.get('nbformat')!r} (expected nbformat 4)"
    if len(data["cells"]) > MAX_CELLS:
        return None, (f"the notebook has {len(data['cells'])} cells, more than the {MAX_CELLS} a submission "
                      "may have (a lesson has a few dozen): submit the lesson's notebook")
    for i, cell in enumerate(data["cells"]):
        if not isinstance(cell, dict) or cell.get("cell_type") not in ("code", "markdown", "raw"):
            return None, f"cell {i} of the notebook is malformed"
        src = cell.get("source")
        if not (isinstance(src, str) or (isinstance(src, list) and all(isinstance(s, str) for s in src))):
            return None, f"cell {i} of the notebook has no valid source"
    try:
        import nbformat

        nbformat.reads(text, as_version=4)
    except Exception as err:  # the driver reads it with nbformat too: refuse what it would refuse
        return None, f"the notebook cannot be read: {type(err).__name__}: {str(err)[:200]}"
    return data, ""


def grade_id(cell: dict) -> str | None:
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
    return gid[:200] if isinstance(gid, str) else None


def safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.\-]", "_", name)[:100].lstrip(".")
    return cleaned if cleaned.endswith(".ipynb") else (cleaned or "notebook") + ".ipynb"
