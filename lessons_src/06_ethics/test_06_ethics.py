"""Lesson 6 (06_ethics): realistic wrong implementations lose the exercise's points, with a
message that names the mistake; valid variants get full marks (public and hidden checks).
Also: the lesson's pictures draw, and the rubric of the written answers stays out of lessons/."""
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lesson_harness import REPO, accepts, master, notebook_functions, rejects, released, unchecked_numbers  # noqa: E402


@pytest.fixture(scope="module")
def solution():
    """The master notebook's own per_class_accuracy, shift, thicken (and its given helpers)."""
    threads = torch.get_num_threads()
    try:
        return notebook_functions("06_ethics")
    finally:
        torch.set_num_threads(threads)      # the setup cell sets 1 thread; leave the test process as it was


def test_the_master_notebooks_functions_pass(solution):
    accepts("ethics_per_class", solution["per_class_accuracy"])
    accepts("ethics_shift", solution["shift"])
    accepts("ethics_thicken", solution["thicken"])


# --- (a) per_class_accuracy ------------------------------------------------------------

def _precision(y_true, y_pred):
    return np.array([np.mean(y_true[y_pred == d] == d) for d in range(10)])


def _int_division(y_true, y_pred):
    right = np.bincount(y_true[y_true == y_pred], minlength=10)
    total = np.bincount(y_true, minlength=10)
    return right // np.maximum(total, 1)


def _classes_1_to_10(y_true, y_pred):
    return np.array([np.mean(y_pred[y_true == d] == d) for d in range(1, 11)])


def _zero_when_absent(y_true, y_pred):
    right = np.bincount(y_true[y_true == y_pred], minlength=10)
    total = np.bincount(y_true, minlength=10)
    return right / np.maximum(total, 1)


def _python_ints(y_true, y_pred):
    out = []
    for d in range(10):
        total = int(np.sum(y_true == d))
        right = int(np.sum((y_true == d) & (y_pred == d)))
        out.append(right / total)
    return np.array(out)


def _unique_classes(y_true, y_pred):
    return np.array([np.mean(y_pred[y_true == d] == d) for d in np.unique(y_true)])


def _as_list(y_true, y_pred):
    return [float(np.mean(y_pred[y_true == d] == d)) if np.any(y_true == d) else float("nan") for d in range(10)]


def _confusion_transposed(y_true, y_pred):
    cm = np.zeros((10, 10))
    np.add.at(cm, (y_pred, y_true), 1)              # rows: predicted (the mistake)
    return np.diag(cm) / cm.sum(axis=1)


def _no_return(y_true, y_pred):
    np.array([np.mean(y_pred[y_true == d] == d) for d in range(10)])


@pytest.mark.parametrize("wrong, says", [
    (_precision, "precision"),
    (_confusion_transposed, "precision"),
    (lambda y_true, y_pred: np.full(10, np.mean(y_true == y_pred)), "overall accuracy"),
    (_int_division, "integer division"),
    (_classes_1_to_10, "shifted by one"),
    (lambda y_true, y_pred: np.array([np.sum((y_true == d) & (y_pred == d)) for d in range(10)], dtype=float),
     "number of right predictions"),
    (lambda y_true, y_pred: 100 * np.array([np.mean(y_pred[y_true == d] == d) for d in range(10)]), "percentages"),
    (_zero_when_absent, "should be nan"),
    (_python_ints, "nan"),
    (_unique_classes, "np.unique"),
    (_as_list, "np.array"),
    (lambda y_true, y_pred: np.array([np.mean(y_pred[y_true == d] == d) for d in range(10)], dtype=np.float32),
     "float64"),
    (lambda y_true, y_pred: torch.tensor([float(np.mean(y_pred[y_true == d] == d)) for d in range(10)]), "numpy"),
    (lambda y_true, y_pred: float(np.mean(y_true == y_pred)), "one accuracy per digit"),
    (_no_return, "return"),
], ids=["precision", "confusion_transposed", "overall_broadcast", "int_division", "off_by_one", "counts",
        "percent", "zero_for_absent", "zero_division", "unique_classes", "list", "float32", "tensor", "scalar",
        "no_return"])
def test_per_class_mistakes_are_caught(wrong, says):
    rejects("ethics_per_class", wrong, says)


def _bincount(y_true, y_pred):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.bincount(y_true[y_true == y_pred], minlength=10) / np.bincount(y_true, minlength=10)


def _confusion(y_true, y_pred):
    cm = np.zeros((10, 10), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        cm[t, p] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(cm) / cm.sum(axis=1)


def _plain_loop(y_true, y_pred):
    acc = []
    for d in range(10):
        total = right = 0
        for t, p in zip(y_true, y_pred):
            if t == d:
                total += 1
                right += int(p == d)
        acc.append(right / total if total else np.nan)
    return np.array(acc, dtype=np.float64)


def _torch(y_true, y_pred):
    t, p = torch.from_numpy(y_true), torch.from_numpy(y_pred)
    return np.array([(p[t == d] == d).double().mean().item() for d in range(10)])


@pytest.mark.parametrize("valid", [_bincount, _confusion, _plain_loop, _torch],
                         ids=["bincount", "confusion_matrix", "plain_loop", "torch"])
def test_per_class_variants_pass(valid):
    accepts("ethics_per_class", valid)


# --- (b) shift -----------------------------------------------------------------------

def _slices(images, dx, dy):
    h, w = images.shape[1:]
    out = np.zeros_like(images)
    out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        images[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _minus_zero(images, dx, dy):
    out = np.zeros_like(images)
    out[:, dy:, dx:] = images[:, :-dy, :-dx]
    return out


def _positive_only(images, dx, dy):
    out = np.zeros_like(images)
    out[:, dy:, dx:] = images[:, :28 - dy, :28 - dx]
    return out


def _float_zeros(images, dx, dy):
    out = np.zeros(images.shape)
    out[...] = _slices(images, dx, dy)
    return out


def _in_place(images, dx, dy):
    images[...] = _slices(images, dx, dy)
    return images


@pytest.mark.parametrize("wrong, says", [
    (lambda images, dx, dy: np.roll(images, (dy, dx), axis=(1, 2)), "wrap-around"),
    (lambda images, dx, dy: np.roll(np.roll(images, dx, axis=2), dy, axis=1), "wrap-around"),
    (lambda images, dx, dy: _slices(images, dy, dx), "swapped"),
    (lambda images, dx, dy: _slices(images, -dx, -dy), "wrong way"),
    (lambda images, dx, dy: _slices(images, dx, -dy), "wrong way"),
    (lambda images, dx, dy: _slices(images, dx + 1, dy), "check the slice bounds"),
    (_minus_zero, "-0 is 0"),
    (_positive_only, "dx < 0"),
    (_float_zeros, "zeros_like"),
    (_in_place, "changed the array"),
    (lambda images, dx, dy: images, "unmoved"),
    (lambda images, dx, dy: torch.from_numpy(_slices(images, dx, dy)), "numpy"),
    (lambda images, dx, dy: _slices(images, dx, dy)[:, None], "shape"),
], ids=["np_roll", "np_roll_twice", "axes_swapped", "both_signs", "dy_sign", "off_by_one", "minus_zero_slice",
        "positive_only", "float64", "in_place", "unchanged", "tensor", "channel_axis"])
def test_shift_mistakes_are_caught(wrong, says):
    rejects("ethics_shift", wrong, says)


def _roll_then_blank(images, dx, dy):
    out = np.roll(images, (dy, dx), axis=(1, 2))
    if dy > 0:
        out[:, :dy] = 0
    elif dy < 0:
        out[:, dy:] = 0
    if dx > 0:
        out[:, :, :dx] = 0
    elif dx < 0:
        out[:, :, dx:] = 0
    return out


def _pad_and_crop(images, dx, dy):
    p = np.pad(images, ((0, 0), (28, 28), (28, 28)))
    return p[:, 28 - dy:56 - dy, 28 - dx:56 - dx].copy()


def _pixel_loop(images, dx, dy):
    out = np.zeros_like(images)
    for r in range(28):
        for c in range(28):
            if 0 <= r + dy < 28 and 0 <= c + dx < 28:
                out[:, r + dy, c + dx] = images[:, r, c]
    return out


def _torch_negative_pad(images, dx, dy):
    return F.pad(torch.from_numpy(images), (dx, -dx, dy, -dy)).numpy()


@pytest.mark.parametrize("valid", [_slices, _roll_then_blank, _pad_and_crop, _pixel_loop, _torch_negative_pad],
                         ids=["slices", "roll_then_blank", "pad_and_crop", "pixel_loop", "torch_negative_pad"])
def test_shift_variants_pass(valid):
    accepts("ethics_shift", valid)


# --- (c) thicken ---------------------------------------------------------------------

def _pool(images, **kwargs):
    x = torch.from_numpy(images).float().unsqueeze(1)
    return F.max_pool2d(x, **kwargs)


def _numpy_shifts(images, offsets, wrap=False):
    h, w = images.shape[1:]
    if wrap:
        return np.max([np.roll(images, (dr, dc), axis=(1, 2)) for dr, dc in offsets], axis=0)
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return np.max([p[:, 1 + dr:1 + dr + h, 1 + dc:1 + dc + w] for dr, dc in offsets], axis=0)


SQUARE = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
PLUS = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]


def _summed(images):
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    out = np.zeros_like(images)
    for dr in range(3):
        for dc in range(3):
            out += p[:, dr:dr + 28, dc:dc + 28]          # uint8: wraps around past 255
    return out


def _unpadded_then_framed(images):
    inner = _pool(images, kernel_size=3, stride=1)[:, 0].numpy().astype(np.uint8)
    return np.pad(inner, ((0, 0), (1, 1), (1, 1)))


def _in_place(images):
    images[...] = _pool(images, kernel_size=3, stride=1, padding=1)[:, 0].numpy().astype(np.uint8)
    return images


@pytest.mark.parametrize("wrong, says", [
    (lambda images: _pool(images, kernel_size=3, padding=1)[:, 0].numpy().astype(np.uint8), "stride"),
    (lambda images: _pool(images, kernel_size=3, stride=1)[:, 0].numpy().astype(np.uint8), "padding=1"),
    (lambda images: _pool(images, kernel_size=3, stride=1, padding=1).numpy().astype(np.uint8), "channel axis"),
    (lambda images: F.avg_pool2d(torch.from_numpy(images).float()[:, None], 3, stride=1, padding=1)[:, 0]
     .numpy().astype(np.uint8), "averages"),
    (lambda images: _numpy_shifts(images, PLUS), "diagonal"),
    (lambda images: _numpy_shifts(images, SQUARE, wrap=True), "wrap-around"),
    (_summed, "adds up"),
    (lambda images: _pool(images, kernel_size=3, stride=1, padding=1)[:, 0].numpy(), "uint8"),
    (lambda images: _pool(images, kernel_size=3, stride=1, padding=1)[:, 0], "numpy"),
    (lambda images: _pool(images, kernel_size=5, stride=1, padding=2)[:, 0].numpy().astype(np.uint8), "5 x 5"),
    (lambda images: _pool(images, kernel_size=(1, 3), stride=1, padding=(0, 1))[:, 0].numpy().astype(np.uint8),
     "sideways"),
    (_unpadded_then_framed, "outer border"),
    (lambda images: _pool(images, kernel_size=2, stride=1, padding=1)[:, 0].numpy().astype(np.uint8), "2 x 2"),
    (_in_place, "changed the array"),
    (lambda images: images.copy(), "unchanged"),
], ids=["default_stride", "no_padding", "channel_kept", "average", "plus_shape", "np_roll", "sum",
        "float32", "tensor", "five_by_five", "rows_only", "border_zeroed", "two_by_two", "in_place", "unchanged"])
def test_thicken_mistakes_are_caught(wrong, says):
    rejects("ethics_thicken", wrong, says)


def _sliding_windows(images):
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    return np.lib.stride_tricks.sliding_window_view(p, (3, 3), axis=(1, 2)).max(axis=(-2, -1))


def _maximum_in_place_on_copy(images):
    out = images.copy()
    p = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    for dr in range(3):
        for dc in range(3):
            np.maximum(out, p[:, dr:dr + 28, dc:dc + 28], out=out)
    return out


@pytest.mark.parametrize("valid", [
    lambda images: _pool(images, kernel_size=3, stride=1, padding=1).squeeze(1).numpy().astype(np.uint8),
    lambda images: F.max_pool2d(torch.from_numpy(images)[:, None], 3, 1, 1)[:, 0].numpy(),   # uint8 pooling
    lambda images: _numpy_shifts(images, SQUARE),
    _sliding_windows,
    _maximum_in_place_on_copy,
], ids=["max_pool2d_float", "max_pool2d_uint8", "numpy_nine_views", "sliding_window_view", "np_maximum"])
def test_thicken_variants_pass(valid):
    accepts("ethics_thicken", valid)


# --- the given transforms, the pictures, the rubric ----------------------------------

def test_given_transforms_behave(solution):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
    assert np.array_equal(solution["invert"](solution["invert"](images)), images)
    thin = solution["thin"](images)
    assert thin.dtype == np.uint8 and (thin <= images).all()
    dot = np.zeros((1, 28, 28), dtype=np.uint8)
    dot[0, 14, 10:18] = 255                                          # a horizontal bar
    turned = solution["rotate"](dot, 90)
    assert turned.dtype == np.uint8 and turned.shape == dot.shape
    rows, cols = np.nonzero(turned[0] > 128)
    assert np.ptp(rows) > np.ptp(cols)                               # now vertical
    assert np.array_equal(solution["rotate"](images, 0), images)


def test_lesson_pictures_draw():
    from coursekit import plots

    rng = np.random.default_rng(0)
    acc = rng.random(10)
    acc[3] = np.nan
    plots.show_accuracy_bars(acc, reference=0.9, title="per digit")
    plots.show_accuracy_bars([0.95, 0.5, 0.2], ["original", "a long caption here", "inverted"])
    plots.show_accuracy_grid(rng.random((3, 10)), ["a", "b", "c"])
    images = rng.integers(0, 256, (8, 28, 28)).astype(np.uint8)
    plots.show_digit_rows({"original": images, "as tensor": torch.from_numpy(images)[:, None].float() / 255},
                          labels=np.arange(8), predictions={"original": np.arange(8)[::-1]}, title="rows")
    plt.close("all")


def test_rubric_is_kept_out_of_the_lesson_and_covers_every_written_answer():
    rubric = REPO / "solutions" / "rubrics" / "06_ethics.md"
    text = rubric.read_text()
    nb = nbformat.read(master("06_ethics"), as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.metadata["nbgrader"]["points"] for c in nb.cells
               if c.cell_type == "markdown" and c.metadata.get("nbgrader", {}).get("grade")}
    assert len(answers) == 4
    for gid, points in answers.items():
        assert re.search(rf"`{gid}`.*\({points:g} points\)", text), f"the rubric has no section for {gid}"
    assert [p.name for p in released("06_ethics").parent.iterdir()] == ["06_ethics.ipynb"]
    lesson = released("06_ethics").read_text()
    assert "Model answer" not in lesson and "solutions/rubrics" not in lesson


# --- numbers in the text ---------------------------------------------------------------

def course_bar_is_97() -> bool:
    """course.yml's accuracy threshold, which the text quotes as 97%."""
    from coursekit import config

    return config.load().evaluation.accuracy_threshold == 0.97


# What no run changes; every other number a student compares with their own run is printed by the
# notebook from that run (lesson_harness.unchecked_numbers).
FIXED_NUMBERS = {"75 to 90 minutes": "study time", "97%": course_bar_is_97,
                 "96%": "section 2's round example", "40%": "section 2's round example",
                 "0%": "the ends of [0, 1] and of the colour scale", "50%": "the colour scale",
                 "100%": "the ends of [0, 1] and of the colour scale",
                 "79.6%": "cited: Buolamwini and Gebru, 2018", "86.2%": "cited: Buolamwini and Gebru, 2018",
                 "34.7%": "cited: Buolamwini and Gebru, 2018", "0.8%": "cited: Buolamwini and Gebru, 2018"}


def test_the_text_states_no_number_of_someone_elses_run():
    assert unchecked_numbers("06_ethics", FIXED_NUMBERS) == []
