"""coursekit's student-side support: reading the digits from the cache, and the pictures."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit import plots  # noqa: E402
from coursekit.data import DataMissing, data_root, load_digits  # noqa: E402
from coursekit.idx import write_idx  # noqa: E402


def _fake_mnist(root, n=7):
    raw = root / "MNIST" / "raw"
    rng = np.random.default_rng(0)
    for prefix, count in (("train", n), ("t10k", n - 2)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, count, dtype=np.uint8))


def test_load_digits_reads_the_cache_with_the_documented_dtypes(tmp_path, monkeypatch):
    _fake_mnist(tmp_path)
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path))
    assert data_root() == tmp_path
    images, labels = load_digits("train")
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (7,) and labels.dtype == np.int64
    assert load_digits("test")[0].shape == (5, 28, 28)
    with pytest.raises(ValueError):
        load_digits("validation")


def test_missing_data_says_run_make_data_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "empty"))
    with pytest.raises(DataMissing) as info:
        load_digits("train")
    assert "make data" in str(info.value) and "\n" not in str(info.value)
    assert len(info.value._render_traceback_()) == 1


def test_default_root_is_the_shared_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("MNIST_CNN_COURSE", str(tmp_path / "no-course.yml"))
    assert data_root() == tmp_path / "mnist_cnn"


def test_every_picture_draws_from_arrays_and_tensors():
    images = np.random.default_rng(0).integers(0, 256, (12, 28, 28), dtype=np.uint8)
    labels = np.arange(12) % 10
    plots.show_digits(images, labels)
    plots.show_digits(torch.from_numpy(images[:, None]).float() / 255, labels, labels[::-1])
    plots.show_label_counts(labels)
    plots.show_pixel_histogram(images, images / 255, names=["before", "after"])
    plots.show_stack(images[:, None])
    plots.show_kernels(torch.randn(6, 1, 5, 5))
    plots.show_feature_maps(torch.randn(1, 6, 24, 24))
    plots.show_loss_curve([2.3, 1.0, 0.5], every=200)
    plots.show_confusion(np.eye(10, dtype=np.int64) * 5 + 1)
    plt.close("all")


def test_progress_yields_the_same_batches_and_knows_their_number():
    from coursekit.progress import progress

    loader = [(i, i * i) for i in range(7)]
    bar = progress(loader, "demo")
    assert len(bar) == 7 and list(bar) == loader
    import itertools

    assert len(progress(itertools.islice(iter(loader), 3), "part", total=3)) == 3
