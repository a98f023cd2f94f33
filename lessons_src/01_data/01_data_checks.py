"""Lesson 1 (01_data): the public checks of add_channel, normalize, to_tensors, make_loader.

Each check: ``*_inputs(seed)`` builds small synthetic inputs (no data files needed),
a collector runs the student's function on them and records plain data, and the
judges below explain what is wrong. The hidden checks (``*_hidden``) reuse these
collectors on other inputs; their judges are in ``lessons_src/01_data/01_data_judges.py``.
"""
from __future__ import annotations

import numpy as np

from coursekit.checks import Found, describe, doing, fail, fmt_shape, judge, kind, register, where_differs

# --- inputs --------------------------------------------------------------------------


def _images(seed: int, n: int) -> np.ndarray:
    """(n, 28, 28) uint8: image 0 holds every value 0..255, image 1 is faint (brightest 200),
    the last one (if n > 2) is all black, the rest are random."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[0] = (np.arange(28 * 28) % 256).reshape(28, 28)[:, ::-1]        # 0..255, not symmetric
    if n > 1:
        images[1] = rng.integers(0, 201, size=(28, 28), dtype=np.uint8)
        images[1, 3, 5] = 200                                              # max exactly 200
    if n > 2:
        images[-1] = 0
    return images


def add_channel_inputs(seed: int) -> dict:
    return {"images": _images(seed, 5)}


def add_channel_hidden_inputs(seed: int) -> dict:
    return {"images": _images(seed + 100, 3)}


def normalize_inputs(seed: int) -> dict:
    return {"images": _images(seed, 4)[:, None]}                           # (4, 1, 28, 28) uint8


def normalize_hidden_inputs(seed: int) -> dict:
    return {"images": _images(seed + 100, 3)}                              # (3, 28, 28): any shape works


def to_tensors_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 1)
    return {"images": _images(seed, 6), "labels": rng.permutation(10)[:6].astype(np.int64)}


def to_tensors_hidden_inputs(seed: int) -> dict:
    rng = np.random.default_rng(seed + 101)
    return {"images": _images(seed + 100, 7), "labels": rng.integers(0, 10, size=7).astype(np.int64)}


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


# --- collectors ----------------------------------------------------------------------

def _image_call(fn, name: str, inputs: dict) -> dict:
    images = inputs["images"]
    before = images.copy()
    doing(f"calling {name}(images) with images of shape {fmt_shape(images.shape)} uint8")
    out = fn(images)
    data = describe(out, "out", {})
    data["input_unchanged"] = bool(images.shape == before.shape and images.dtype == before.dtype
                                   and np.array_equal(images, before))
    return data


@register("data_add_channel", inputs=add_channel_inputs, title="(N, 28, 28) -> (N, 1, 28, 28), pixels untouched",
          hints=[(r"shape \(60000", "don't hard-code 60000: the function must work for any number of images "
                                    "(use -1 or len(images))")])
def collect_add_channel(inputs, add_channel):
    return _image_call(add_channel, "add_channel", inputs)


register("data_add_channel_hidden", inputs=add_channel_hidden_inputs, seed=1)(collect_add_channel)


@register("data_normalize", inputs=normalize_inputs, title="uint8 0..255 -> float32 0..1 (pixel / 255)")
def collect_normalize(inputs, normalize):
    return _image_call(normalize, "normalize", inputs)


register("data_normalize_hidden", inputs=normalize_hidden_inputs, seed=1)(collect_normalize)


@register("data_to_tensors", inputs=to_tensors_inputs,
          title="x (N, 1, 28, 28) float32 in [0, 1], y (N,) int64, as tensors")
def collect_to_tensors(inputs, to_tensors):
    images, labels = inputs["images"], inputs["labels"]
    doing(f"calling to_tensors(images, labels) with images {fmt_shape(images.shape)} uint8 "
          f"and labels {fmt_shape(labels.shape)} int64")
    result = to_tensors(images, labels)
    data = {"result.kind": kind(result)}
    if isinstance(result, (tuple, list)):
        data["result.len"] = len(result)
        if len(result) == 2:
            describe(result[0], "x", data)
            describe(result[1], "y", data)
    own = _own_pipeline(to_tensors, images)
    if own is not None:
        describe(own, "own", data)
    return data


def _own_pipeline(to_tensors, images):
    """The notebook's own normalize(add_channel(images)), where to_tensors sees both (its globals);
    None where it does not, or where they raise. to_tensors is judged on how it uses them: their
    own mistakes cost their own checks' points, not to_tensors' too."""
    own = getattr(to_tensors, "__globals__", {})
    normalize, add_channel = own.get("normalize"), own.get("add_channel")
    if not (callable(normalize) and callable(add_channel)):
        return None
    try:
        return normalize(add_channel(images.copy()))
    except Exception:  # an unfinished exercise: its own check says so
        return None


def from_own_pipeline(found) -> bool:
    """x is exactly the notebook's own normalize(add_channel(images)), values and dtype."""
    if "own.value" not in found or "x.value" not in found:
        return False
    own, x = np.asarray(found["own.value"], dtype=np.float64), np.asarray(found["x.value"], dtype=np.float64)
    same_dtype = str(found.get("x.dtype")).replace("torch.", "") == str(found.get("own.dtype")).replace("torch.", "")
    return own.shape == x.shape and same_dtype and bool(np.allclose(own, x, atol=1e-6, rtol=0))


register("data_to_tensors_hidden", inputs=to_tensors_hidden_inputs, seed=1)(collect_to_tensors)

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

# --- judges --------------------------------------------------------------------------


def _same_kind_of_array(out: Found, fn: str, what: str) -> None:
    out.need_kind("ndarray", hint=(
        f"{fn} works on NumPy arrays and should return one; the conversion to torch tensors is "
        f"to_tensors's job." if out.kind == "Tensor" else
        f"{fn} should end with `return ...` of the {what} array." if out.kind == "NoneType" else ""))


@judge("data_add_channel", "data_add_channel_hidden")
def judge_add_channel(inputs, found):
    images = inputs["images"]
    n = len(images)
    out = Found(found, "out", "add_channel(images)")
    _same_kind_of_array(out, "add_channel", "new")
    want = (n, 1, 28, 28)
    if out.shape != want:
        hints = {
            (n, 28, 28, 1): "the channel went to the end (channels-last, as in TensorFlow). PyTorch wants it "
                            "right after the image axis, at position 1.",
            (1, n, 28, 28): "the new axis went in front of the batch axis. Axis 0 counts the images; the "
                            "channel axis goes at position 1.",
            (n, 28, 1, 28): "the new axis went between the rows and the columns; it belongs at position 1.",
            (n, 28, 28): "no axis was added: the shape is unchanged.",
        }
        out.need_shape(want, hint=hints.get(out.shape, "add one axis of length 1 at position 1 (after the batch axis)."))
    if out.dtype != str(images.dtype):
        fail(f"add_channel(images) should keep dtype {images.dtype}, but returned dtype {out.dtype}.",
             "add_channel only adds an axis; changing the values or the dtype is normalize's job (next exercise).")
    v = out.value[:, 0]
    if not np.array_equal(v, images):
        if np.array_equal(v, images.transpose(0, 2, 1)):
            fail("add_channel(images) swapped the rows and the columns of each image (it is transposed).",
                 "adding an axis must not move any pixel, and a transpose does.")
        fail(f"add_channel(images) has the right shape but the pixels moved: {where_differs(v, images)}.",
             "adding an axis must not move any pixel: insert the new axis (indexing with None, np.expand_dims "
             "or a reshape to (N, 1, 28, 28) all do that) instead of transposing.")
    if not found["input_unchanged"]:
        fail("add_channel(images) changed the array it was given (its shape or values).",
             "return a new array (or view) instead of setting images.shape or resizing the array in place.")


@judge("data_normalize", "data_normalize_hidden")
def judge_normalize(inputs, found):
    images = inputs["images"]
    out = Found(found, "out", "normalize(images)")
    _same_kind_of_array(out, "normalize", "scaled")
    out.need_shape(images.shape, hint="normalize only changes the values; the shape stays as it was.")
    v = np.asarray(out.value, dtype=np.float64)
    expected = images.astype(np.float64) / 255
    if np.isnan(v).any():
        fail(f"normalize(images) returned NaN (not a number) in {int(np.isnan(v).sum())} places.",
             "NaN comes from 0/0: dividing by each image's own maximum fails for an all-black image. "
             "Divide every pixel by the same number, 255.")
    if v.min() < -1e-6:
        fail(f"normalize(images) returned values from {v.min():g} to {v.max():g}; they should lie in [0, 1].",
             "this lesson scales to [0, 1], pixel / 255, without subtracting a mean (that would be "
             "standardizing, a further exercise).")
    if v.max() > 1.0 + 1e-6:
        if np.allclose(v, images):
            fail(f"normalize(images) returned the pixels unscaled: the values still go up to {v.max():g}.",
                 "divide by 255 so that 0 stays 0 and 255 becomes 1.0.")
        fail(f"normalize(images) returned values up to {v.max():g}; they should lie in [0, 1].",
             "divide by 255 so that 0 stays 0 and 255 becomes 1.0.")
    if out.dtype in ("float16", "bfloat16"):
        out.need_dtype("float32", hint=f"{out.dtype} is too coarse: it cannot hold p / 255 exactly enough. Use float32.")
    if not np.allclose(v, expected, atol=1e-6, rtol=0):
        if np.allclose(v, images / 256.0, atol=1e-6, rtol=0):
            fail(f"normalize(images) maps 255 to {255 / 256:.6f}, not to 1.0: it divides by 256.",
                 "pixels go from 0 to 255, so the largest one is 255: divide by 255.")
        if np.array_equal(v, images // 255):
            fail("normalize(images) returned only 0s and 1s: that is integer division (//).",
                 "use true division, /, on float32 values.")
        per_image = images.max(axis=tuple(range(1, images.ndim)), keepdims=True).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if np.allclose(np.nan_to_num(v), np.nan_to_num(images / per_image), atol=1e-6):
                fail("normalize(images) divides each image by its own brightest pixel: a faint digit whose "
                     "brightest pixel is 200 gets 1.0 instead of 200/255 = 0.784.",
                     "divide every pixel by the same number, 255.")
        fail(f"normalize(images) returned wrong values, {where_differs(v, expected)}.",
             "each pixel p should become p / 255 (0 -> 0.0, 255 -> 1.0), the same fixed number for every "
             "pixel: not a maximum computed from the data (per image or per pixel position).")
    if out.dtype != "float32":
        hint = ("NumPy's division of an integer array gives float64. Networks use float32 (half the memory, "
                "and torch layers expect it): convert with .astype(np.float32)." if out.dtype == "float64" else
                "convert to float32 with .astype(np.float32).")
        out.need_dtype("float32", hint=hint)
    if not found["input_unchanged"]:
        fail("normalize(images) changed the array it was given.", "compute a new array instead of changing images in place.")


def _judge_x_values(images, x) -> None:
    """x's values are images / 255 with the channel axis, and its dtype float32."""
    xv = np.asarray(x.value, dtype=np.float64)
    expected = images[:, None].astype(np.float64) / 255
    if xv.max() > 1.0 + 1e-6:
        fail(f"x has values up to {xv.max():g}; they should lie in [0, 1].",
             "call normalize(...) on the images before converting them.")
    if not np.allclose(xv, expected, atol=1e-6, rtol=0):
        if np.allclose(xv, images[:, None] / 256.0, atol=1e-6):
            fail("x maps 255 to 0.996: the pixels were divided by 256.",
                 "pixels go up to 255: divide by 255. If to_tensors uses your normalize, fix normalize (exercise b).")
        fail(f"x has wrong values, {where_differs(xv, expected)}.",
             "x should be normalize(add_channel(images)) as a tensor, image order unchanged.")
    x.need_dtype("torch.float32", hint={
        "torch.float64": "torch.from_numpy keeps NumPy's float64; the model's weights are float32, so "
                         "make sure normalize returns float32 (or call .float()).",
    }.get(x.dtype, "the model wants float32 inputs: .float() converts."))


@judge("data_to_tensors", "data_to_tensors_hidden")
def judge_to_tensors(inputs, found):
    images, labels = inputs["images"], inputs["labels"]
    n = len(images)
    if found["result.kind"] not in ("tuple", "list") or found.get("result.len") != 2:
        got = found["result.kind"] + (f" of length {found['result.len']}" if "result.len" in found else "")
        fail(f"to_tensors(images, labels) should return a pair (x, y), but returned a {got}.",
             "end with `return x, y`.")
    x = Found(found, "x", "x, the first thing to_tensors returns,")
    y = Found(found, "y", "y, the second thing to_tensors returns,")
    x.need_kind("Tensor", hint="convert the NumPy array with torch.from_numpy(...) (or torch.tensor(...)).")
    if not from_own_pipeline(found):   # else normalize's or add_channel's own check reports their mistake
        want = (n, 1, 28, 28)
        x.need_shape(want, hint="call add_channel(images) first: the network wants a channel axis."
                     if x.shape == (n, 28, 28) else f"x must be {fmt_shape(want)}: images, channel, rows, columns.")
        _judge_x_values(images, x)
    y.need_kind("Tensor", hint="convert the labels to a tensor too (torch.from_numpy or torch.tensor).")
    y.need_shape((n,), hint="one label per image: don't add an axis to the labels.")
    if y.dtype != "torch.int64":
        fail(f"y should have dtype torch.int64, but it has dtype {y.dtype}.",
             "CrossEntropyLoss (lesson 4) wants the labels as class numbers of dtype int64 ('long'); "
             "torch.FloatTensor(...) or .float() makes floats; torch.from_numpy keeps NumPy's int64 (.long() converts).")
    if not np.array_equal(np.asarray(y.value), labels):
        fail(f"y does not hold the labels in their order: {where_differs(y.value, labels)}.",
             "y[i] must be the label of image i: convert labels without reordering them.")
    if x.requires_grad:
        fail("x requires a gradient, but it is data, not a weight.", "create it without requires_grad=True.")


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
