"""mnist_cnn.plots: each function writes one non-empty PNG and returns its path."""
import matplotlib
import numpy as np
from PIL import Image

from mnist_cnn import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_size=(300, 300)):
    assert path.is_file() and path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as img:
        assert img.size[0] >= min_size[0] and img.size[1] >= min_size[1]
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 5  # something is drawn, not a blank canvas


def test_loss_curve(tmp_path):
    history = [(step, 2.3 * np.exp(-step / 300) + 0.03) for step in range(200, 1600, 200)]
    path = plots.loss_curve(history, tmp_path / "sub" / "loss.png", epoch_losses=[0.8, 0.1, 0.05], steps=1407)
    assert path == tmp_path / "sub" / "loss.png"
    assert_png(path)


def test_loss_curve_with_nothing_logged(tmp_path):
    assert_png(plots.loss_curve([], tmp_path / "empty.png", title="dry run"))
    assert_png(plots.loss_curve([], tmp_path / "epochs.png", epoch_losses=[2.3], steps=3))


def test_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    confusion = np.diag(rng.integers(900, 1100, size=10)) + (rng.random((10, 10)) < 0.3) * rng.integers(0, 8, (10, 10))
    assert_png(plots.confusion_matrix(confusion, tmp_path / "cm.png"))
    assert_png(plots.confusion_matrix(np.zeros((10, 10), dtype=np.int64), tmp_path / "zeros.png"))


def test_misclassified_grid(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)
    true = rng.integers(0, 10, size=50)
    predicted = (true + 1) % 10
    predicted[:5] = true[:5]  # a few right ones are skipped
    assert_png(plots.misclassified_grid(images, true, predicted, tmp_path / "wrong.png", max_images=36))
    assert_png(plots.misclassified_grid(images[:3], true[:3], true[:3], tmp_path / "none.png"), (150, 150))


def test_pyplot_backend_is_left_alone(tmp_path):
    before = matplotlib.get_backend()
    plots.loss_curve([(1, 1.0)], tmp_path / "x.png")
    assert matplotlib.get_backend() == before
