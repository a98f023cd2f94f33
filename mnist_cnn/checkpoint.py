"""Save and load a trained ``Net`` with what is needed to use it again.

A checkpoint is one ``torch.save`` file holding a plain dict (every value loads
under ``torch.load(weights_only=True)``, so loading never runs pickled code):

    format          "mnist_cnn/checkpoint-v1"
    state_dict      {layer name: tensor}, the ``Net`` weights, on the CPU
    recipe_name     e.g. "fast"
    recipe          the Recipe as a dict: epochs, batch_size, lr, ...
    standardize     bool: inputs were (pixels/255 - mean) / std, not pixels/255
    mean, std       the MNIST mean and std used when standardize is true
    accuracy        test accuracy in [0, 1]
    torch_version   e.g. "2.13.0+cpu"
    history         [[step, loss], ...] one pair per logged line of training
    epoch_losses    [loss, ...] mean training loss of each epoch

Every way a file can be wrong raises ``CheckpointError`` with a one-line message
saying what is wrong and what to do.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
import tempfile
from pathlib import Path
from typing import Iterable, Optional, Sequence, Tuple, Union

import torch

from coursekit.config import Recipe
from mnist_cnn.model import Net
from mnist_cnn.train import MNIST_MEAN, MNIST_STD

FORMAT = "mnist_cnn/checkpoint-v1"
TRAIN_HINT = "train one with `python -m mnist_cnn train`"
REQUIRED_KEYS = ("state_dict", "recipe_name", "recipe", "standardize", "mean", "std", "accuracy")

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(ValueError):
    """The checkpoint file is missing, unreadable, not ours, or does not fit ``Net``."""


def save(
    path: PathLike,
    model: torch.nn.Module,
    *,
    recipe_name: str,
    recipe: Recipe,
    accuracy: float,
    history: Optional[Iterable[Sequence[float]]] = None,
    epoch_losses: Optional[Iterable[float]] = None,
) -> Path:
    """Write ``model`` and its metadata to ``path`` atomically (a reader never sees half a file).

    path: the file to write, e.g. ``runs/latest/model.pt``; parent folders are created.
    model: a trained ``Net`` (on any device; the weights are saved on the CPU).
    recipe_name, recipe: the training recipe used (its ``standardize`` is recorded).
    accuracy: test accuracy in [0, 1].
    history: (step, loss) pairs, e.g. ``TrainResult.history``; epoch_losses: floats per epoch.
    Returns the path written.
    """
    path = Path(path)
    checkpoint = {
        "format": FORMAT,
        "state_dict": {name: t.detach().cpu().clone() for name, t in model.state_dict().items()},
        "recipe_name": str(recipe_name),
        "recipe": dataclasses.asdict(recipe),
        "standardize": bool(recipe.standardize),
        "mean": float(MNIST_MEAN),
        "std": float(MNIST_STD),
        "accuracy": float(accuracy),
        "torch_version": str(torch.__version__),
        "history": [[int(step), float(loss)] for step, loss in (history or [])],
        "epoch_losses": [float(loss) for loss in (epoch_losses or [])],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _read(path: Path, device: Union[str, torch.device]) -> object:
    """``torch.load(path, weights_only=True)``, with every failure turned into a CheckpointError."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint; {TRAIN_HINT} or pass --checkpoint")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; pass the .pt file inside it")
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" in str(err).lower():
            raise CheckpointError(
                f"{path} holds pickled Python objects (e.g. a whole saved model), not an mnist_cnn "
                f"checkpoint; it is not loaded for safety; {TRAIN_HINT}"
            ) from None
        raise CheckpointError(f"{path} is not a PyTorch file (corrupt or another format); {TRAIN_HINT}") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read: {err.strerror or err}") from None
    except Exception:  # torch raises RuntimeError, KeyError, EOFError... on foreign bytes
        raise CheckpointError(f"{path} is not a PyTorch file (corrupt or another format); {TRAIN_HINT}") from None


def _check_state_dict(path: Path, state_dict: object, model: Net) -> None:
    """Raise CheckpointError unless ``state_dict`` has exactly ``model``'s keys and shapes."""
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(state_dict).__name__}, not a dict; {TRAIN_HINT}")
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unexpected:
            parts.append(f"unexpected {', '.join(map(str, unexpected))}")
        raise CheckpointError(f"{path}: weights are not those of Net ({'; '.join(parts)}); {TRAIN_HINT}")
    for name, shape in expected.items():
        tensor = state_dict[name]
        got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        if got != shape:
            raise CheckpointError(
                f"{path}: weight {name} has shape {got}, Net expects {shape} "
                f"(saved from a different model); {TRAIN_HINT}"
            )


def load(path: PathLike, device: Union[str, torch.device] = "cpu") -> Tuple[Net, dict]:
    """Load a checkpoint written by ``save``.

    path: the checkpoint file. device: where to put the model ("cpu", "cuda", a torch.device).
    Returns (model, meta): a ``Net`` in eval mode on ``device``, and the checkpoint's dict
    without ``state_dict`` (keys as in the module docstring).
    Raises CheckpointError (one line) for a missing file, a non-torch file, a torch file
    that is not an mnist_cnn checkpoint, or weights of the wrong names or shapes.
    """
    path = Path(path)
    obj = _read(path, device)
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path} is not an mnist_cnn checkpoint (it holds a {type(obj).__name__}); {TRAIN_HINT}")
    if "format" not in obj:
        bare = obj and all(isinstance(v, torch.Tensor) for v in obj.values())
        what = "it looks like a bare state_dict; " if bare else ""
        raise CheckpointError(f"{path} is not an mnist_cnn checkpoint (no 'format' key; {what}{TRAIN_HINT})")
    if obj["format"] != FORMAT:
        raise CheckpointError(f"{path} has format {obj['format']!r}, expected {FORMAT!r}; {TRAIN_HINT}")
    missing = [k for k in REQUIRED_KEYS if k not in obj]
    if missing:
        raise CheckpointError(f"{path}: checkpoint is incomplete (no {', '.join(map(repr, missing))}); {TRAIN_HINT}")
    model = Net()
    _check_state_dict(path, obj["state_dict"], model)
    model.load_state_dict(obj["state_dict"])
    model.to(device).eval()
    meta = {k: v for k, v in obj.items() if k != "state_dict"}
    return model, meta
