"""coursekit's student-side support: reading the digits from the cache, and the pictures."""
import os
import sys

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


# --- coursekit.draw: a drawn digit, preprocessed as MNIST's were ---------------------------------

def _as_drawn(digit):
    """An MNIST digit as the pad would send it: drawn 10 times larger, off-centre, then averaged
    over 4 x 4 blocks of the 280 x 280 pad (70 x 70 grey levels)."""
    pad = np.zeros((280, 280), dtype=np.float32)
    big = np.kron(digit.astype(np.float32), np.ones((10, 10), dtype=np.float32))      # (280, 280)
    pad[30:, :250] = big[:250, 30:]                                                    # moved down-left
    return pad.reshape(70, 4, 70, 4).mean(axis=(1, 3)).astype(np.uint8)


def test_a_drawn_mnist_digit_comes_back_as_mnist_made_it(mnist_test):
    from coursekit.draw import preprocess

    images = mnist_test[0][:50]
    for digit in images:
        out = preprocess(_as_drawn(digit))
        assert out.shape == (28, 28) and out.dtype == np.uint8
        rows, cols = np.nonzero(out > 30)
        assert max(np.ptp(rows), np.ptp(cols)) + 1 <= 21                   # fitted into 20 x 20
        mass = out.astype(np.float64)
        com = ((mass.sum(1) * np.arange(28)).sum() / mass.sum(), (mass.sum(0) * np.arange(28)).sum() / mass.sum())
        assert abs(com[0] - 14) <= 0.75 and abs(com[1] - 14) <= 0.75, com      # centred by mass, as MNIST
    # and close to the original (MNIST's digits were made this way): correlation per image
    corr = [np.corrcoef(preprocess(_as_drawn(d)).ravel(), d.ravel())[0, 1] for d in images]
    assert np.median(corr) > 0.9, np.median(corr)


def test_a_pad_without_ink_gives_nothing_and_a_dot_gives_a_centred_dot():
    from coursekit.draw import preprocess

    assert preprocess(np.zeros((70, 70), np.uint8)) is None
    dot = np.zeros((70, 70), np.uint8)
    dot[5:8, 60:63] = 255
    out = preprocess(dot)
    assert out[13:15, 13:15].min() > 200 and out.sum() > 0


def test_the_pad_classifies_with_the_network_it_is_given():
    import torch

    from coursekit.draw import DigitPad, SENT

    class Sevens(torch.nn.Module):
        def forward(self, x):                                  # (N, 1, 28, 28) -> (N, 10)
            return torch.nn.functional.one_hot(torch.full((len(x),), 7), 10).float() * 5

    pad = DigitPad(Sevens())
    drawing = np.zeros((SENT, SENT), np.uint8)
    drawing[10:60, 30:36] = 255                                # a stroke
    pad.pixels = drawing.ravel().tolist()
    assert pad.digit == 7 and abs(sum(pad.probabilities) - 1) < 1e-9 and len(pad.preview) == 784

    class Broken(torch.nn.Module):
        def forward(self, x):
            raise RuntimeError("shapes")

    broken = DigitPad(Broken())
    broken.pixels = drawing.ravel().tolist()
    assert broken.digit == -1 and "RuntimeError: shapes" in broken.error


PAD_NOTEBOOK = '''\
import numpy as np, torch
from coursekit.data import load_digits
from coursekit.draw import DigitPad

images, labels = load_digits("test")
means = torch.stack([torch.from_numpy(images[labels == d] / 255.0).float().mean(0) for d in range(10)])  # (10, 28, 28)

class NearestMean(torch.nn.Module):
    """A 'network' with no training: the digit whose mean test image is nearest."""
    def forward(self, x):                                               # (N, 1, 28, 28) -> (N, 10)
        return -((x[:, 0, None] - means[None]) ** 2).sum((2, 3)) / 10

DigitPad(NearestMean())
'''


@pytest.mark.slow
def test_a_digit_drawn_with_the_mouse_is_read_in_jupyterlab(tmp_path):
    """JupyterLab in headless Chromium: a stroke drawn with mouse events on the pad comes back as the
    network's guess, through the browser's downsampling and MNIST's preprocessing (a 1 here)."""
    import nbformat
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from browser_kit import chromium, jupyter_lab, wait_for

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PAD_NOTEBOOK)],
                                            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                     "language": "python"}}), tmp_path / "pad.ipynb")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    with jupyter_lab(sys.executable, tmp_path, env) as lab, chromium() as browser:
        browser.get(lab.url("lab/tree/pad.ipynb"))
        wait_for(browser, ".jp-Notebook .jp-Cell .cm-content").click()
        WebDriverWait(browser, 120).until(lambda b: "Idle" in b.find_element("css selector", ".jp-StatusBar-Widget, "
                                                                            "#jp-main-statusbar").text)
        ActionChains(browser).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        pad = wait_for(browser, "canvas.pad-canvas", timeout=300)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", pad)
        stroke = ActionChains(browser).move_to_element_with_offset(pad, 0, -90).click_and_hold()
        for _ in range(9):
            stroke.move_by_offset(0, 20)
        stroke.release().perform()
        WebDriverWait(browser, 120).until(
            lambda b: b.find_element("css selector", ".pad-digit").get_attribute("data-digit") not in (None, "-1"))
        read = browser.find_element("css selector", ".pad-digit")
        browser.save_screenshot(str(tmp_path / "pad.png"))
        digit, text = read.get_attribute("data-digit"), read.text
        bars = len(browser.find_elements("css selector", ".pad-bar"))
    assert digit == "1" and "your network reads: 1" in text, (digit, text, tmp_path / "pad.png")
    assert bars == 10


def test_probability_charts_can_share_an_axis_so_that_flat_looks_flat(tmp_path):
    """Lesson 3's three panels: logits on their own scale, both softmax charts on 0..1."""
    logits = torch.tensor([3.0, 1.0, 0.2, -1.0, 0.5, -2.0, 0.0, 1.5, -0.5, 0.3])
    p = torch.softmax(logits, 0)
    plt.close("all")
    plots.show_bars(logits, p, torch.softmax(p, 0), names=["logits", "softmax", "softmax of softmax"],
                    ylims=[None, (0, 1), (0, 1)])
    axes = plt.gcf().axes
    assert axes[1].get_ylim() == axes[2].get_ylim() == (0, 1) and axes[0].get_ylim()[0] < -2
    plt.gcf().savefig(tmp_path / "bars.png")
    plt.close("all")
    plots.show_bars(p, torch.softmax(p, 0))                   # without ylims: each its own scale (the old look)
    own = [ax.get_ylim()[1] for ax in plt.gcf().axes]
    assert own[1] < 0.2 < own[0]
    plt.close("all")


def _course_net(relu_after_conv1=True, pool=torch.nn.functional.max_pool2d):
    import torch.nn.functional as F
    from torch import nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(256, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = self.conv1(x)
            x = pool(F.relu(x) if relu_after_conv1 else x, 2)
            x = torch.flatten(pool(F.relu(self.conv2(x)), 2), 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))
    torch.manual_seed(0)
    return Net()


def test_the_data_flow_shows_every_layer_as_the_students_forward_computes_it(capsys):
    """Lesson 2 and 3's figure: the stages and shapes of one digit through the network, the steps
    between layers named by their effect (a missing ReLU or an average pool shows as such)."""
    x = torch.rand(1, 1, 28, 28)
    stages = [(name, a.shape) for name, a in plots.trace_layers(_course_net(), x)]
    assert stages == [("input", (1, 28, 28)), ("conv1", (6, 24, 24)), ("ReLU + max-pool", (6, 12, 12)),
                      ("conv2", (16, 8, 8)), ("ReLU + max-pool + flatten", (256,)), ("fc1", (120,)),
                      ("ReLU → fc2", (84,)), ("ReLU → fc3", (10,))]
    names = [name for name, _ in plots.trace_layers(_course_net(relu_after_conv1=False), x)]
    assert names[2] == "max-pool"
    names = [name for name, _ in plots.trace_layers(_course_net(pool=torch.nn.functional.avg_pool2d), x)]
    assert names[2] == "ReLU + average pool" and names[4] == "ReLU + average pool + flatten"
    plt.close("all")
    plots.show_data_flow(_course_net(), x[0])
    axes = plt.gcf().axes
    assert [ax.get_xlabel() for ax in axes] == ["1 × 28 × 28", "6 × 24 × 24", "6 × 12 × 12", "16 × 8 × 8", "256",
                                                "120", "84", "10"]
    plt.close("all")
    broken = torch.nn.Linear(3, 2)                               # cannot take an image: one line, no figure
    plots.show_data_flow(broken, x)
    out = capsys.readouterr().out
    assert out.startswith("show_data_flow: your network could not take one image") and out.count("\n") == 1
    assert not plt.get_fignums()


def test_per_digit_error_rates_show_a_fourfold_difference_as_fourfold_bars():
    """Lesson 6's per-digit chart: on an accuracy axis from 0 to 100%, 99% and 96% look alike; as error
    rates on an axis from 0, the digit misread four times as often has a bar four times as high."""
    acc = np.array([0.99, 0.96, np.nan])
    plt.close("all")
    plots.show_accuracy_bars(acc, reference=0.975, errors=True)
    ax = plt.gcf().axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    assert heights[1] == pytest.approx(4 * heights[0]) and heights[2] == 0
    assert ax.get_ylim() == pytest.approx((0, 0.048)) and ax.get_ylabel() == "error rate (misread)"
    labels = [t.get_text() for t in ax.texts]
    assert "4.0%" in labels and "1.0%" in labels and "no data" in labels, labels
    plt.close("all")
    plots.show_accuracy_bars(acc)                                      # the accuracy view is unchanged
    assert plt.gcf().axes[0].get_ylim() == (0, 1.1)
    plt.close("all")


def test_the_stack_figure_numbers_every_axis_from_0_as_the_shape_lists_them():
    """Lesson 1's stack of cards: 'axis 0: image', 'axis 1: channel', 'axis 2: row', 'axis 3: column';
    it once mixed 'axis -1/-2' with 'axis 0/1'."""
    for images, want in ((np.zeros((4, 1, 28, 28)), ["axis 0", "axis 1", "axis 2", "axis 3"]),
                         (np.zeros((4, 28, 28)), ["axis 0", "axis 1", "axis 2"])):
        plt.close("all")
        plots.show_stack(images)
        texts = [t.get_text() for t in plt.gcf().axes[0].texts if t.get_text()]   # (the arrow is a text too)
        assert sorted(t.split(":")[0] for t in texts) == want, texts
        assert not any("-" in t.split(":")[0] for t in texts)
    plt.close("all")


def test_the_flatten_figure_has_a_colour_bar_and_readable_text():
    """Lesson 3's flatten figure: one colour scale for maps and vector, shown; no text under 9 pt,
    in a figure no wider than a notebook shows without shrinking it much (11 inches)."""
    maps = torch.relu(torch.randn(16, 4, 4))
    plt.close("all")
    plots.show_flatten(maps, maps.flatten())
    fig = plt.gcf()
    assert any(ax.get_ylabel() == "value" for ax in fig.axes)                # the colour bar
    assert fig.get_size_inches()[0] <= 11
    sizes = [t.get_fontsize() for ax in fig.axes for t in [ax.title, ax.xaxis.label, *ax.get_xticklabels(),
                                                             *ax.get_yticklabels()] if t.get_text()]
    assert sizes and min(sizes) >= 9, sizes
    plt.close("all")
