"""Lesson 1 (d): make_loader(x, y, batch_size, shuffle) -> a DataLoader: every sample once per epoch,
in batches of batch_size, shuffled anew each epoch (or not)."""
from __future__ import annotations

import numpy as np

from coursekit.checks import describe, doing, fail, fmt_shape, judge, kind, register


def _loader_inputs(seed: int, n: int, batch_size: int) -> dict:
    """x: (n, 1, 28, 28) float32 in [0, 1], each sample recognisable; y: (n,) int64 paired with x."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 1, 28, 28), dtype=np.float32)
    x[:, 0, 0, 0] = np.arange(n, dtype=np.float32) / 255                   # sample i: pixel (0, 0) = i/255
    y = ((np.arange(n) * 3 + 1 + seed) % 10).astype(np.int64)
    return {"x": x, "y": y, "batch_size": batch_size, "seed": seed}


def make_loader_inputs(seed: int) -> dict:
    return _loader_inputs(seed, 10, 5)


def make_loader_hidden_inputs(seed: int) -> dict:
    return _loader_inputs(seed + 100, 23, 6)


MAX_BATCHES = 60   # per epoch: enough for the inputs above, and a guard against endless loaders


def _epoch(loader, x: np.ndarray, tag: str, data: dict) -> None:
    """Iterate ``loader`` once; record each batch's kind, shapes, dtypes, sample ids and labels."""
    flat = x.reshape(len(x), -1)
    kinds, xshapes, xdtypes, yshapes, ydtypes, sizes, ids, labels = [], [], [], [], [], [], [], []
    for i, batch in enumerate(loader):
        if i >= MAX_BATCHES:
            break
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            n = len(batch) if isinstance(batch, (tuple, list)) else -1
            kinds.append(f"{kind(batch)} of length {n}" if n >= 0 else kind(batch))
            break
        xb, yb = batch
        kinds.append("pair")
        xd, yd = describe(xb, "b", {}), describe(yb, "b", {})
        xshapes.append(fmt_shape(xd.get("b.shape", ())))
        yshapes.append(fmt_shape(yd.get("b.shape", ())))
        xdtypes.append(str(xd.get("b.dtype", xd["b.kind"])))
        ydtypes.append(str(yd.get("b.dtype", yd["b.kind"])))
        xv, yv = xd.get("b.value"), yd.get("b.value")
        if xv is None or xv.ndim != 4 or xv.shape[1:] != x.shape[1:]:
            continue
        sizes.append(len(xv))
        for row in xv.reshape(len(xv), -1):
            match = np.flatnonzero((flat == row).all(axis=1))
            ids.append(int(match[0]) if len(match) else -1)
        yv = np.asarray(yv).reshape(-1)
        labels.extend(int(v) for v in (yv if len(yv) == len(xv) else np.full(len(xv), -1)))
    data[f"{tag}.kinds"] = np.array(kinds, dtype=str)
    data[f"{tag}.xshapes"] = np.array(xshapes, dtype=str)
    data[f"{tag}.xdtypes"] = np.array(xdtypes, dtype=str)
    data[f"{tag}.yshapes"] = np.array(yshapes, dtype=str)
    data[f"{tag}.ydtypes"] = np.array(ydtypes, dtype=str)
    data[f"{tag}.sizes"] = np.array(sizes, dtype=np.int64)
    data[f"{tag}.ids"] = np.array(ids, dtype=np.int64)
    data[f"{tag}.labels"] = np.array(labels, dtype=np.int64)


@register("data_make_loader", inputs=make_loader_inputs,
          title="batches of (x, y), batch_size honoured, every sample once per epoch, reshuffled each epoch")
def collect_make_loader(inputs, make_loader):
    import torch

    x, y, bs, seed = inputs["x"], inputs["y"], int(inputs["batch_size"]), int(inputs["seed"])
    data = {}
    shapes = f"x {fmt_shape(x.shape)} float32, y {fmt_shape(y.shape)} int64"
    with torch.random.fork_rng(devices=[]):     # seed the shuffles without touching the notebook's own RNG
        torch.manual_seed(seed)
        doing(f"calling make_loader(x, y) with {shapes} and iterating over it")
        loader = make_loader(torch.from_numpy(x.copy()), torch.from_numpy(y.copy()))
        data["default.kind"] = kind(loader)
        _epoch(loader, x, "default.e1", data)
        _epoch(loader, x, "default.e2", data)
        torch.manual_seed(seed + 1)
        doing(f"calling make_loader(x, y, batch_size={bs}, shuffle=False) with {shapes} and iterating over it")
        loader = make_loader(torch.from_numpy(x.copy()), torch.from_numpy(y.copy()), batch_size=bs, shuffle=False)
        data["fixed.kind"] = kind(loader)
        _epoch(loader, x, "fixed.e1", data)
    return data


register("data_make_loader_hidden", inputs=make_loader_hidden_inputs, seed=1)(collect_make_loader)


def _loader_batches(found, tag: str, what: str):
    kinds = list(found[f"{tag}.kinds"])
    if not kinds:
        fail(f"{what} gave no batches at all.", "return a DataLoader over a TensorDataset of x and y; iterating over it yields (x, y) batches.")
    if kinds[0] != "pair":
        fail(f"each batch from {what} should be a pair (images, labels), but the first was a {kinds[0]}.",
             "build the TensorDataset from both tensors, images first, so each batch is [x_batch, y_batch].")


def _judge_epoch(found, tag: str, what: str, inputs: dict, batch_size: int,
                 size_hint: str = "pass the batch_size argument on to the DataLoader.") -> np.ndarray:
    """Check one recorded epoch; returns the order in which the samples came out."""
    x, y = inputs["x"], inputs["y"]
    n = len(x)
    _loader_batches(found, tag, what)
    xs, ys = list(found[f"{tag}.xshapes"]), list(found[f"{tag}.yshapes"])
    first = min(batch_size, n)
    if xs[0] != fmt_shape((first, 1, 28, 28)):
        if ys[0] == fmt_shape((first, 1, 28, 28)):
            fail(f"the batches from {what} hold the labels first and the images second.",
                 "build the TensorDataset with the images first, then the labels.")
        if xs[0] in (fmt_shape((1, 28, 28)), fmt_shape((28, 28))):
            fail(f"the first batch of images from {what} has shape {xs[0]}, expected {fmt_shape((first, 1, 28, 28))}: "
                 f"that is one image, not a batch of {first}.",
                 "return a DataLoader, not the dataset: a DataLoader stacks samples into batches.")
        if xs[0] == fmt_shape((1, 1, 28, 28)) and first > 1:
            fail(f"the first batch of images from {what} has shape {xs[0]}, expected {fmt_shape((first, 1, 28, 28))}: "
                 f"batches of 1 image instead of {first}.",
                 "a DataLoader's own default batch_size is 1: pass the batch_size argument on to it.")
        fail(f"the first batch of images from {what} has shape {xs[0]}, expected {fmt_shape((first, 1, 28, 28))}.",
             size_hint)
    if ys[0] != fmt_shape((first,)):
        fail(f"the first batch of labels from {what} has shape {ys[0]}, expected {fmt_shape((first,))}.")
    xd, yd = found[f"{tag}.xdtypes"][0], found[f"{tag}.ydtypes"][0]
    if xd != "torch.float32" or yd != "torch.int64":
        fail(f"the batches from {what} have dtypes {xd} (images) and {yd} (labels), expected torch.float32 and "
             f"torch.int64.", "the DataLoader should pass the tensors through unchanged.")
    sizes = list(found[f"{tag}.sizes"])
    want_sizes = [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    ids = np.asarray(found[f"{tag}.ids"])
    if (ids < 0).any():
        fail(f"{what} produced images that are not among the ones it was given.",
             "put x into the dataset unchanged.")
    seen = np.bincount(ids, minlength=n)
    if sizes != want_sizes or (seen != 1).any():
        if (seen > 1).any():
            fail(f"in one pass over {what}, sample {int(np.argmax(seen > 1))} came {int(seen.max())} times "
                 f"(every sample should come exactly once).",
                 "shuffle=True in the DataLoader draws without replacement; don't sample with replacement.")
        missing = int((seen == 0).sum())
        if missing and sizes == [batch_size] * (n // batch_size):
            fail(f"one pass over {what} gave {int(seen.sum())} of the {n} samples: the last, smaller batch was dropped.",
                 "leave drop_last at False: every sample should be seen once per epoch.")
        fail(f"one pass over {what} gave batches of sizes {sizes}, expected {want_sizes} ({n} samples, batch_size={batch_size}).",
             "pass the batch_size argument (not a fixed number) on to the DataLoader.")
    labels = np.asarray(found[f"{tag}.labels"])
    bad = np.flatnonzero(labels != y[ids])
    if len(bad):
        k = int(bad[0])
        fail(f"{what} separated images from their labels: image {int(ids[k])} came with label {int(labels[k])}, "
             f"but its label is {int(y[ids[k]])}.",
             "shuffle images and labels together: a TensorDataset keeps each pair, and the DataLoader shuffles whole pairs.")
    return ids


@judge("data_make_loader", "data_make_loader_hidden")
def judge_make_loader(inputs, found):
    n, bs = len(inputs["x"]), int(inputs["batch_size"])
    what = "make_loader(x, y)"
    if found["default.kind"] == "TensorDataset":
        fail(f"{what} returned the TensorDataset itself; it should return a DataLoader over it.",
             "wrap the dataset in a DataLoader and return that.")
    default = "make_loader's batch_size defaults to 4 (see its first line), and it should reach the DataLoader."
    e1 = _judge_epoch(found, "default.e1", what, inputs, 4, default)
    e2 = _judge_epoch(found, "default.e2", f"{what} (second epoch)", inputs, 4, default)
    identity = np.arange(n)
    if np.array_equal(e1, identity):
        fail(f"{what} did not shuffle: the samples came in their original order 0, 1, 2, ...",
             "make_loader shuffles by default: pass the shuffle argument on to the DataLoader.")
    if np.array_equal(e1, e2):
        fail(f"{what} gave the same order in both epochs ({', '.join(map(str, e1[:6]))}, ...).",
             "shuffling once before building the loader is not enough: a DataLoader with shuffle=True "
             "draws a new order every epoch, so the model never sees the same sequence twice.")
    what = f"make_loader(x, y, batch_size={bs}, shuffle=False)"
    order = _judge_epoch(found, "fixed.e1", what, inputs, bs)
    if not np.array_equal(order, identity):
        fail(f"{what} shuffled anyway: the samples came as {', '.join(map(str, order[:6]))}, ...",
             "pass the shuffle argument on to the DataLoader.")
