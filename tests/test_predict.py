"""mnist_cnn.predict: pictures of digits -> MNIST-style 28x28 images -> predicted digits."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from coursekit.config import load
from mnist_cnn.model import Net
from mnist_cnn.predict import ImageError, predict, preprocess
from mnist_cnn.train import set_seed, to_tensors, train


def draw_digit(digit="1", size=(200, 200), *, dark_on_light=True, offset=(0, 0), scale=1.0, mode="L"):
    """A digit drawn with PIL, like a user's picture.

    digit: "1" (a vertical bar), "0" (an ellipse outline) or "7" (a bar and a slanted stroke).
    size: (width, height) of the canvas. offset: (dx, dy) of the digit from the centre, pixels.
    scale: the digit's height as a fraction of 0.6 * the canvas height.
    Returns a PIL image of ``mode`` ("L", "RGB" or "RGBA"; RGBA: a transparent background).
    """
    w, h = size
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    img = Image.new("L", size, paper)
    d = ImageDraw.Draw(img)
    cx, cy = w / 2 + offset[0], h / 2 + offset[1]
    half = 0.3 * h * scale            # half the digit's height
    stroke = max(2, round(half / 6))  # about MNIST's stroke width relative to the digit
    if digit == "1":
        d.rectangle([cx - stroke, cy - half, cx + stroke, cy + half], fill=ink)
    elif digit == "0":
        d.ellipse([cx - 0.6 * half, cy - half, cx + 0.6 * half, cy + half], outline=ink, width=stroke * 2)
    elif digit == "7":
        d.line([(cx - 0.6 * half, cy - half), (cx + 0.6 * half, cy - half), (cx - 0.1 * half, cy + half)],
               fill=ink, width=stroke * 2, joint="curve")
    else:
        raise ValueError(digit)
    if mode == "RGBA":
        rgba = Image.new("RGBA", size, (0, 0, 0, 0))
        rgba.putalpha(Image.eval(img, lambda v: 255 - v) if dark_on_light else img)
        return rgba
    return img.convert(mode)


def check_mnist_like(out):
    """Assert ``out`` looks like an MNIST digit /255: shape, dtype, range, black border, size, centre."""
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() == pytest.approx(1.0)
    assert out[0].max() == 0 and out[-1].max() == 0 and out[:, 0].max() == 0 and out[:, -1].max() == 0
    rows = np.flatnonzero(out.any(axis=1))
    cols = np.flatnonzero(out.any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    assert height <= 20 and width <= 20
    assert max(height, width) >= 19  # the longer side fills the 20x20 box
    r, c = np.indices(out.shape)
    cy, cx = (r * out).sum() / out.sum(), (c * out).sum() / out.sum()
    assert abs(cy - 13.5) <= 0.5 + 1e-6 and abs(cx - 13.5) <= 0.5 + 1e-6  # centred by mass within a pixel


VARIANTS = {
    "big canvas, dark on light": dict(size=(600, 600)),
    "small canvas, dark on light": dict(size=(40, 40)),
    "light on dark": dict(dark_on_light=False),
    "off centre, small digit": dict(size=(300, 200), offset=(90, -40), scale=0.4),
    "wide canvas, light on dark": dict(size=(500, 120), offset=(-150, 0), dark_on_light=False),
    "RGB": dict(mode="RGB"),
    "RGBA transparent background": dict(mode="RGBA"),
}


@pytest.mark.parametrize("digit", ["1", "0", "7"])
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_preprocess_makes_an_mnist_like_image(digit, variant):
    check_mnist_like(preprocess(draw_digit(digit, **VARIANTS[variant])))


def test_polarity_canvas_and_position_do_not_matter():
    reference = preprocess(draw_digit("0", (280, 280)))
    for kwargs in [dict(dark_on_light=False), dict(size=(500, 400), offset=(100, 50)), dict(mode="RGB")]:
        out = preprocess(draw_digit("0", (280, 280) if "size" not in kwargs else kwargs.pop("size"), **kwargs))
        assert np.abs(out - reference).mean() < 0.05


def test_a_vertical_bar_stays_a_thin_centred_bar():
    out = preprocess(draw_digit("1"))
    cols = np.flatnonzero(out.max(axis=0) > 0.5)
    assert cols.min() >= 11 and cols.max() <= 16  # thin, in the middle columns
    assert (out.max(axis=1) > 0.5).sum() >= 18   # spans the 20-pixel height


def test_preprocess_reads_files(tmp_path):
    for name, mode in [("d.png", "L"), ("d.jpg", "RGB"), ("d_rgba.png", "RGBA"), ("d_p.png", "P")]:
        path = tmp_path / name
        image = draw_digit("7", (120, 160), mode="RGBA" if mode == "RGBA" else "L")
        (image if mode == "RGBA" else image.convert(mode)).save(path)
        check_mnist_like(preprocess(path))
        check_mnist_like(preprocess(str(path)))


def test_blank_image_is_an_error():
    with pytest.raises(ImageError, match="no digit found"):
        preprocess(Image.new("L", (50, 50), 255))
    with pytest.raises(ImageError, match="no digit found"):
        preprocess(Image.new("RGBA", (50, 50), (0, 0, 0, 0)))


def test_missing_and_unreadable_files_are_errors(tmp_path):
    with pytest.raises(ImageError, match="no such image file"):
        preprocess(tmp_path / "nope.png")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="not an image file"):
        preprocess(bad)
    with pytest.raises(ImageError, match="folder"):
        preprocess(tmp_path)


def test_predict_returns_digit_probability_and_distribution(tmp_path):
    set_seed(0)
    model = Net()
    paths = []
    for digit in "107":
        paths.append(tmp_path / f"{digit}.png")
        draw_digit(digit).save(paths[-1])
    results = predict(model, paths, standardize=True)
    assert len(results) == 3
    for digit, probability, probs in results:
        assert isinstance(digit, int) and 0 <= digit <= 9
        assert probs.shape == (10,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
        assert probability == pytest.approx(probs.max()) and digit == int(probs.argmax())
    assert predict(model, [], standardize=False) == []


@pytest.mark.real_data
@pytest.mark.slow
def test_trained_model_reads_drawn_digits(mnist_train, tmp_path):
    recipe = load().recipe("fast")
    recipe = dataclasses.replace(recipe, epochs=2)
    x, y = to_tensors(*mnist_train, standardize=recipe.standardize)
    set_seed(0)
    model = Net()
    train(model, recipe, x, y, seed=0, progress=False, log=lambda line: None)
    pictures = {
        "1": draw_digit("1", (300, 300)),
        "0": draw_digit("0", (200, 260), dark_on_light=False),
        "7": draw_digit("7", (240, 240), mode="RGB"),
    }
    results = predict(model, list(pictures.values()), standardize=recipe.standardize)
    predicted = {name: digit for name, (digit, _, _) in zip(pictures, results)}
    assert predicted == {name: int(name) for name in pictures}
