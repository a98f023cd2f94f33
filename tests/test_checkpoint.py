"""mnist_cnn.checkpoint: save/load round trip, and a clear CheckpointError for every bad file."""
import dataclasses

import pytest
import torch
from torch import nn

from mnist_cnn import checkpoint
from mnist_cnn.checkpoint import FORMAT, CheckpointError
from coursekit.config import load
from mnist_cnn.model import Net
from mnist_cnn.train import MNIST_MEAN, MNIST_STD, set_seed

HISTORY = [(200, 0.9), (400, 0.3)]


@pytest.fixture
def recipe():
    return load().recipe("fast")


@pytest.fixture
def saved(tmp_path, recipe):
    """(path, model) of a checkpoint of a freshly initialised Net."""
    set_seed(0)
    model = Net()
    path = checkpoint.save(tmp_path / "run" / "model.pt", model, recipe_name="fast", recipe=recipe,
                           accuracy=0.9912, history=HISTORY, epoch_losses=[0.5, 0.2])
    return path, model


def test_round_trip_gives_the_same_outputs(saved):
    path, model = saved
    loaded, meta = checkpoint.load(path)
    assert isinstance(loaded, Net) and not loaded.training
    x = torch.randn(8, 1, 28, 28)                      # (8, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))        # (8, 10) logits, bit for bit


def test_meta_records_the_run(saved, recipe):
    path, _ = saved
    _, meta = checkpoint.load(path)
    assert meta["format"] == FORMAT
    assert "state_dict" not in meta
    assert meta["recipe_name"] == "fast"
    assert meta["recipe"] == dataclasses.asdict(recipe)
    assert meta["standardize"] is recipe.standardize
    assert (meta["mean"], meta["std"]) == (MNIST_MEAN, MNIST_STD)
    assert meta["accuracy"] == pytest.approx(0.9912)
    assert meta["torch_version"] == torch.__version__
    assert meta["history"] == [[200, 0.9], [400, 0.3]]
    assert meta["epoch_losses"] == [0.5, 0.2]


def test_file_is_plain_data_and_written_atomically(saved):
    path, _ = saved
    raw = torch.load(path, weights_only=True)         # only tensors and plain types inside
    assert set(raw) >= {"format", "state_dict", "recipe", "accuracy", "history"}
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary file left


def test_save_stores_cpu_weights(saved):
    path, model = saved
    raw = torch.load(path, weights_only=True)
    assert all(t.device.type == "cpu" for t in raw["state_dict"].values())


def test_load_to_a_device(saved):
    path, _ = saved
    model, _ = checkpoint.load(path, device=torch.device("cpu"))
    assert next(model.parameters()).device.type == "cpu"


def _write(path, obj):
    torch.save(obj, path)
    return path


def _ours(tmp_path, recipe, **changes):
    """Our checkpoint dict with ``changes`` applied (a value of None deletes the key)."""
    path = checkpoint.save(tmp_path / "good.pt", Net(), recipe_name="fast", recipe=recipe, accuracy=0.5)
    obj = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    return obj


def bad_files(tmp_path, recipe):
    """{case: (path, expected message fragment)} for every way a checkpoint can be wrong."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "text.pt").write_text("these are not the weights you are looking for\n")
    (tmp_path / "empty.pt").write_bytes(b"")
    wrong_shape = _ours(tmp_path, recipe)
    wrong_shape["state_dict"]["conv1.weight"] = torch.zeros(8, 1, 5, 5)
    return {
        "missing file": (tmp_path / "nope.pt", "no such checkpoint"),
        "a folder": (tmp_path / "folder", "is a folder"),
        "a text file": (tmp_path / "text.pt", "is not a PyTorch file"),
        "an empty file": (tmp_path / "empty.pt", "is not a PyTorch file"),
        "a whole pickled model": (_write(tmp_path / "module.pt", Net()), "pickled Python objects"),
        "a bare state_dict": (_write(tmp_path / "bare.pt", Net().state_dict()),
                              "no 'format' key; it looks like a bare state_dict"),
        "another dict": (_write(tmp_path / "dict.pt", {"epoch": 3}), "no 'format' key"),
        "a list": (_write(tmp_path / "list.pt", [1, 2, 3]), "it holds a list"),
        "another format": (_write(tmp_path / "v0.pt", _ours(tmp_path, recipe, format="mnist_cnn/checkpoint-v0")),
                           "has format 'mnist_cnn/checkpoint-v0'"),
        "a missing key": (_write(tmp_path / "nostd.pt", _ours(tmp_path, recipe, standardize=None)),
                          "incomplete (no 'standardize')"),
        "another model's weights": (_write(tmp_path / "linear.pt",
                                           _ours(tmp_path, recipe, state_dict=nn.Linear(784, 10).state_dict())),
                                    "weights are not those of Net (missing conv1.weight"),
        "wrong shapes": (_write(tmp_path / "shape.pt", wrong_shape),
                         "weight conv1.weight has shape (8, 1, 5, 5), Net expects (6, 1, 5, 5)"),
    }


CASES = ["missing file", "a folder", "a text file", "an empty file", "a whole pickled model",
         "a bare state_dict", "another dict", "a list", "another format", "a missing key",
         "another model's weights", "wrong shapes"]


@pytest.mark.parametrize("case", CASES)
def test_bad_files_give_one_clear_line(case, tmp_path, recipe):
    cases = bad_files(tmp_path, recipe)
    assert sorted(cases) == sorted(CASES)
    path, fragment = cases[case]
    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert fragment in message
    assert str(path) in message
    assert "\n" not in message
    if case not in ("a folder",):
        assert "python -m mnist_cnn train" in message  # says what to do
