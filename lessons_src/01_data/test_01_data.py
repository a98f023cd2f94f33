"""Lesson 1 (01_data): realistic wrong implementations lose the exercise's points, with a
message that names the mistake; valid variants get full marks (public and hidden checks)."""
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, RandomSampler, SequentialSampler, TensorDataset

from lesson_harness import accepts, notebook_functions, rejects, unchecked_numbers


@pytest.fixture(scope="module")
def solution():
    """The master notebook's own add_channel, normalize, to_tensors, make_loader."""
    return notebook_functions("01_data")


def test_the_master_notebooks_functions_pass(solution):
    accepts("data_add_channel", solution["add_channel"])
    accepts("data_normalize", solution["normalize"])
    accepts("data_to_tensors", solution["to_tensors"])
    accepts("data_make_loader", solution["make_loader"])


# --- (a) add_channel -----------------------------------------------------------------

def _inplace_shape(images):
    images.shape = (len(images), 1, 28, 28)
    return images


def _no_return(images):
    images[:, None]


@pytest.mark.parametrize("wrong, says", [
    (lambda images: images[..., None], "channel went to the end"),
    (lambda images: images[None], "in front of the batch axis"),
    (lambda images: images.reshape(60000, 1, 28, 28), "hard-code 60000"),
    (lambda images: np.expand_dims(images.transpose(0, 2, 1), 1), "swapped the rows and the columns"),
    (lambda images: images.T.reshape(-1, 1, 28, 28), "pixels moved"),
    (lambda images: images[:, None].astype(np.float32), "keep dtype uint8"),
    (lambda images: torch.from_numpy(images).unsqueeze(1), "numpy"),
    (lambda images: images[:, None] / 255, "keep dtype uint8"),
    (_no_return, "return"),
    (_inplace_shape, "changed the array it was given"),
    (lambda images: images, "no axis was added"),
], ids=["channels_last", "axis_in_front", "hard_coded_n", "transposed", "scrambled", "float32", "tensor",
        "scaled_too", "no_return", "in_place", "unchanged"])
def test_add_channel_mistakes_are_caught(wrong, says):
    rejects("data_add_channel", wrong, says)


@pytest.mark.parametrize("valid", [
    lambda images: images[:, None],
    lambda images: np.expand_dims(images, axis=1),
    lambda images: images.reshape(-1, 1, 28, 28),
    lambda images: images.reshape(images.shape[0], 1, images.shape[1], images.shape[2]).copy(),
    lambda images: np.stack([images], axis=1),
], ids=["none_index", "expand_dims", "reshape_minus_one", "reshape_copy", "stack"])
def test_add_channel_variants_pass(valid):
    accepts("data_add_channel", valid)


# --- (b) normalize -------------------------------------------------------------------

def _per_image_max(images):
    peak = images.max(axis=tuple(range(1, images.ndim)), keepdims=True)
    return (images / np.maximum(peak, 1)).astype(np.float32)


@pytest.mark.parametrize("wrong, says", [
    (lambda images: (images / 256).astype(np.float32), "divides by 256"),
    (lambda images: images / 256, "divides by 256"),
    (lambda images: images.astype(np.float32), "unscaled"),
    (lambda images: images, "unscaled"),
    (lambda images: images / 255, "float64"),
    (lambda images: images // 255, "integer division"),
    (lambda images: (images / images.max(axis=(1, 2, 3), keepdims=True)).astype(np.float32), "nan"),
    (_per_image_max, "own brightest pixel"),
    (lambda images: (images / images.max(axis=0)).astype(np.float32), "not a maximum computed from the data"),
    (lambda images: ((images / 255 - 0.1307) / 0.3081).astype(np.float32), "subtracting a mean"),
    (lambda images: torch.from_numpy(images).float() / 255, "should be a NumPy array"),
    (lambda images: (images / 255).astype(np.float16), "float16"),
    (lambda images: images.reshape(len(images), -1).astype(np.float32) / 255, "shape"),
], ids=["div256", "div256_float64", "no_scaling_float", "no_scaling", "float64", "floor_div", "per_image_nan",
        "per_image", "wrong_axis", "standardized", "tensor", "float16", "flattened"])
def test_normalize_mistakes_are_caught(wrong, says):
    rejects("data_normalize", wrong, says)


@pytest.mark.parametrize("valid", [
    lambda images: images.astype(np.float32) / 255,
    lambda images: (images / 255).astype(np.float32),
    lambda images: np.divide(images, 255, dtype=np.float32),
    lambda images: images.astype(np.float32) * np.float32(1 / 255),
    lambda images: (images.astype(np.float64) / 255.0).astype("float32"),
], ids=["astype_then_divide", "divide_then_astype", "np_divide", "multiply", "float64_then_cast"])
def test_normalize_variants_pass(valid):
    accepts("data_normalize", valid)


# --- (c) to_tensors ------------------------------------------------------------------

def add_channel(images):
    return images[:, None]


def normalize(images):
    return images.astype(np.float32) / 255


@pytest.mark.parametrize("wrong, says", [
    (lambda images, labels: (torch.from_numpy(add_channel(images)).float(), torch.from_numpy(labels)), "up to 255"),
    (lambda images, labels: (torch.from_numpy(normalize(add_channel(images))), torch.FloatTensor(labels)), "int64"),
    (lambda images, labels: (torch.from_numpy(normalize(add_channel(images))), torch.from_numpy(labels).float()),
     "int64"),
    (lambda images, labels: (torch.from_numpy(normalize(images)), torch.from_numpy(labels)), "add_channel"),
    (lambda images, labels: (torch.from_numpy(add_channel(images) / 255), torch.from_numpy(labels)), "float64"),
    (lambda images, labels: (normalize(add_channel(images)), labels), "tensor"),
    (lambda images, labels: (torch.from_numpy(normalize(add_channel(images))), torch.from_numpy(labels)[:, None]),
     "shape"),
    (lambda images, labels: torch.from_numpy(normalize(add_channel(images))), "pair"),
    (lambda images, labels: (torch.from_numpy(labels), torch.from_numpy(normalize(add_channel(images)))), "shape"),
    (lambda images, labels: (torch.from_numpy(normalize(add_channel(images))), torch.from_numpy(np.sort(labels))),
     "order"),
    (lambda images, labels: (torch.from_numpy(add_channel(images) / 256).float(), torch.from_numpy(labels)), "256"),
], ids=["not_scaled", "float_tensor_labels", "float_labels", "no_channel", "float64", "numpy", "labels_2d",
        "only_x", "swapped", "labels_reordered", "div256"])
def test_to_tensors_mistakes_are_caught(wrong, says):
    rejects("data_to_tensors", wrong, says)


def _notebook(normalize_source: str, add_channel_source: str = "def add_channel(images):\n    return images[:, None]\n"):
    """A notebook's namespace: these normalize and add_channel, and a right to_tensors that calls them."""
    namespace = {"np": np, "torch": torch}
    exec(normalize_source + add_channel_source + "def to_tensors(images, labels):\n"
         "    return torch.from_numpy(normalize(add_channel(images))), torch.from_numpy(labels)\n", namespace)
    return namespace


@pytest.mark.parametrize("normalize_source, add_channel_source, wrong, says", [
    ("def normalize(images):\n    return (images - images.mean()) / images.std()\n", None, "data_normalize", "standardizing"),
    ("def normalize(images):\n    return images.astype(np.float32) / 256\n", None, "data_normalize", "256"),
    ("def normalize(images):\n    return images.astype(np.float32) / 255\n",
     "def add_channel(images):\n    return images\n", "data_add_channel", "no axis was added"),
], ids=["standardized", "div256", "no_channel"])
def test_a_mistake_in_normalize_or_add_channel_costs_once(normalize_source, add_channel_source, wrong, says):
    """to_tensors calls the notebook's own functions: their mistake costs their check, not to_tensors' too."""
    notebook = _notebook(normalize_source, *([add_channel_source] if add_channel_source else []))
    rejects(wrong, notebook[wrong.split("_", 1)[1]], says)
    accepts("data_to_tensors", notebook["to_tensors"])


def test_a_wrong_normalize_used_without_add_channel_costs_once():
    """to_tensors calls the notebook's normalize but adds the channel axis itself: normalize's /256
    costs normalize's check only (x is normalize's output, with the axis)."""
    notebook = _notebook("def normalize(images):\n    return images.astype(np.float32) / 256\n")
    exec("def to_tensors(images, labels):\n    return torch.from_numpy(normalize(images)[:, None]), "
         "torch.from_numpy(labels)\n", notebook)
    rejects("data_normalize", notebook["normalize"], "256")
    accepts("data_to_tensors", notebook["to_tensors"])
    exec("def to_tensors(images, labels):\n    return torch.from_numpy(normalize(images)[:, None] * 2), "
         "torch.from_numpy(labels)\n", notebook)                # x is not normalize's output: judged
    rejects("data_to_tensors", notebook["to_tensors"], "they should lie in [0, 1]")


def test_the_check_never_calls_normalize_itself():
    """A normalize that never returns (the grader's "looper") must not take to_tensors down with it."""
    notebook = _notebook("calls = []\ndef normalize(images):\n    calls.append(1)\n    while True:\n        pass\n")
    exec("def to_tensors(images, labels):\n    return torch.from_numpy(add_channel(images) / 255).float(), "
         "torch.from_numpy(labels)\n", notebook)
    accepts("data_to_tensors", notebook["to_tensors"])
    assert notebook["calls"] == []


def test_to_tensors_that_ignores_the_notebooks_functions_is_still_judged():
    notebook = _notebook("def normalize(images):\n    return images.astype(np.float32) / 255\n")
    exec("def to_tensors(images, labels):\n    return torch.from_numpy(images[:, None] / 256).float(), "
         "torch.from_numpy(labels)\n", notebook)
    rejects("data_to_tensors", notebook["to_tensors"], "256")


@pytest.mark.parametrize("valid", [
    lambda images, labels: (torch.tensor(normalize(add_channel(images))), torch.tensor(labels)),
    lambda images, labels: (torch.as_tensor(images, dtype=torch.float32).unsqueeze(1) / 255,
                            torch.as_tensor(labels, dtype=torch.long)),
    lambda images, labels: [torch.from_numpy(images).float().div(255).view(-1, 1, 28, 28), torch.from_numpy(labels)],
], ids=["torch_tensor", "torch_ops", "view_and_list"])
def test_to_tensors_variants_pass(valid):
    accepts("data_to_tensors", valid)


# --- (d) make_loader -----------------------------------------------------------------

def _shuffled_once(x, y, batch_size=4, shuffle=True):
    perm = torch.randperm(len(x))
    return DataLoader(TensorDataset(x[perm], y[perm]), batch_size=batch_size, shuffle=False)


def _labels_shuffled_apart(x, y, batch_size=4, shuffle=True):
    return DataLoader(TensorDataset(x, y[torch.randperm(len(y))]), batch_size=batch_size, shuffle=shuffle)


def _with_replacement(x, y, batch_size=4, shuffle=True):
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=batch_size, sampler=RandomSampler(ds, replacement=True) if shuffle else None)


@pytest.mark.parametrize("wrong, says", [
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), shuffle=shuffle), "batches of 1"),
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), batch_size=batch_size), "did not shuffle"),
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True),
     "shuffled anyway"),
    (_shuffled_once, "same order in both epochs"),
    (_labels_shuffled_apart, "separated images from their labels"),
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                                                         drop_last=True), "dropped"),
    (lambda x, y, batch_size=4, shuffle=True: TensorDataset(x, y), "TensorDataset itself"),
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(y, x), batch_size=batch_size, shuffle=shuffle),
     "labels first"),
    (_with_replacement, "exactly once"),
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), batch_size=4, shuffle=shuffle),
     "batch_size argument"),
    (lambda x, y, batch_size=64, shuffle=True: DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle),
     "defaults to 4"),
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=shuffle),
     "pair"),
    (lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x.double(), y), batch_size=batch_size,
                                                         shuffle=shuffle), "dtypes"),
], ids=["no_batch_size", "never_shuffles", "always_shuffles", "shuffled_once", "labels_apart", "drop_last",
        "returns_dataset", "swapped", "replacement", "fixed_batch_size", "wrong_default", "no_labels", "float64"])
def test_make_loader_mistakes_are_caught(wrong, says):
    rejects("data_make_loader", wrong, says)


def _explicit_samplers(x, y, batch_size=4, shuffle=True):
    ds = TensorDataset(x, y)
    return DataLoader(ds, batch_size=batch_size, sampler=RandomSampler(ds) if shuffle else SequentialSampler(ds))


@pytest.mark.parametrize("valid", [
    lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), batch_size, shuffle),
    lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                                                        drop_last=False, num_workers=0),
    lambda x, y, batch_size=4, shuffle=True: DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle,
                                                        generator=torch.Generator().manual_seed(7)),
    _explicit_samplers,
], ids=["positional", "explicit_defaults", "own_generator", "explicit_samplers"])
def test_make_loader_variants_pass(valid):
    accepts("data_make_loader", valid)


# --- numbers in the text ---------------------------------------------------------------

# What no run changes; every other number a student compares with their own run is printed by the
# notebook from that run (lesson_harness.unchecked_numbers).
FIXED_NUMBERS = {"45 to 60 minutes": "study time"}


def test_the_text_states_no_number_of_someone_elses_run():
    assert unchecked_numbers("01_data", FIXED_NUMBERS) == []
