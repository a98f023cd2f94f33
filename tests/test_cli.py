"""mnist_cnn.cli: every command runs on a small synthetic MNIST; every error is one line, exit 2."""
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from coursekit.idx import write_idx
from mnist_cnn import cli
from coursekit.fetch import ALLOW_UNVERIFIED_ENV
from mnist_cnn.model import Net

from test_predict import draw_digit

N_TRAIN, N_TEST = 300, 100


def synthetic_mnist(root, seed=0):
    """Write a tiny MNIST look-alike in torchvision's layout under ``root``.

    Images (N, 28, 28) uint8: a bright 6x6 square whose position depends on the label,
    plus noise. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    for prefix, n in [("train", N_TRAIN), ("t10k", N_TEST)]:
        labels = rng.integers(0, 10, size=n).astype(np.uint8)                # (n,)
        images = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)      # (n, 28, 28)
        for image, label in zip(images, labels):
            r, c = 4 + 8 * (label // 4), 4 + 6 * (label % 4)
            image[r:r + 6, c:c + 6] = 255
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A dry-run `train` on synthetic data: {"data": root, "out": folder, "stdout": text}."""
    root = synthetic_mnist(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ALLOW_UNVERIFIED_ENV, "1")
        capture = _Capture()
        with capture:
            code = cli.main(["train", "--dry-run", "--no-progress", "--device", "cpu",
                             "--data-dir", str(root), "--out", str(out)])
    assert code == 0, capture.err
    return {"data": root, "out": out, "stdout": capture.out}


class _Capture:
    """Capture sys.stdout/sys.stderr text (capsys is function-scoped; the fixture above is not)."""

    def __enter__(self):
        import io
        self._saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
        return self

    def __exit__(self, *exc):
        self.out, self.err = sys.stdout.getvalue(), sys.stderr.getvalue()
        sys.stdout, sys.stderr = self._saved


@pytest.fixture
def unverified(monkeypatch):
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")


def assert_one_line_error(code, err, fragment):
    """Exit 2, exactly one stderr line `mnist-cnn: error: ...` containing ``fragment``, no traceback."""
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mnist-cnn: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err


# --- the commands -----------------------------------------------------------------------

def test_help(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("fetch", "train", "evaluate", "predict"):
        assert command in out
    for command in ("fetch", "train", "evaluate", "predict"):
        assert cli.main([command, "--help"]) == 0
        assert "usage: mnist-cnn " + command in capsys.readouterr().out


def test_python_dash_m_help():
    done = subprocess.run([sys.executable, "-m", "mnist_cnn", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: mnist-cnn")
    assert "train" in done.stdout and "predict" in done.stdout


def test_fetch_reports_where_the_data_is(run, unverified, capsys):
    assert cli.main(["fetch", "--data-dir", str(run["data"])]) == 0
    assert str(run["data"] / "MNIST" / "raw") in capsys.readouterr().out


def test_train_dry_run_writes_model_and_plots(run):
    out, stdout = run["out"], run["stdout"]
    assert re.search(r"^test accuracy: \d+\.\d\d% \(\d+/100\), mean loss \d+\.\d{4}$", stdout, re.M), stdout
    for name in ("model.pt", "loss_curve.png", "confusion_matrix.png", "misclassified.png"):
        path = out / name
        assert path.is_file() and path.stat().st_size > 0
        assert f"wrote {path}" in stdout
    meta = torch.load(out / "model.pt", weights_only=True)
    assert meta["recipe_name"] == "fast" and meta["standardize"] is True


def test_train_course_recipe_with_epochs_override(run, unverified, tmp_path, capsys):
    code = cli.main(["train", "--recipe", "course", "--epochs", "2", "--dry-run", "--no-progress",
                     "--device", "cpu", "--data-dir", str(run["data"]), "--out", str(tmp_path)])
    assert code == 0
    meta = torch.load(tmp_path / "model.pt", weights_only=True)
    assert meta["recipe_name"] == "course" and meta["recipe"]["epochs"] == 2 and meta["standardize"] is False
    assert "recipe 'course'" in capsys.readouterr().out


def test_evaluate_prints_accuracy_and_per_class_table(run, unverified, tmp_path, capsys):
    code = cli.main(["evaluate", "--checkpoint", str(run["out"] / "model.pt"), "--data-dir", str(run["data"]),
                     "--device", "cpu", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert re.search(r"^test accuracy: \d+\.\d\d% \(\d+/100\), mean loss \d+\.\d{4}$", out, re.M), out
    assert "digit  count  accuracy" in out
    rows = re.findall(r"^\s+(\d)\s+(\d+)\s+(\S+)$", out, re.M)
    assert [int(r[0]) for r in rows] == list(range(10)) and sum(int(r[1]) for r in rows) == N_TEST
    assert (tmp_path / "confusion_matrix.png").stat().st_size > 0


def test_predict_prints_one_line_per_image(run, tmp_path, capsys):
    paths = []
    for digit in "17":
        paths.append(tmp_path / f"digit{digit}.png")
        draw_digit(digit).save(paths[-1])
    code = cli.main(["predict", *map(str, paths), "--checkpoint", str(run["out"] / "model.pt")])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    for path, line in zip(paths, lines):
        assert re.fullmatch(re.escape(str(path)) + r": \d \(p=[01]\.\d{3}\)", line), line


# --- errors: one line on stderr, exit 2 ------------------------------------------------------

def test_missing_checkpoint(tmp_path, capsys):
    code = cli.main(["evaluate", "--checkpoint", str(tmp_path / "nope.pt")])
    assert_one_line_error(code, capsys.readouterr().err, "no such checkpoint")


@pytest.mark.parametrize("obj, fragment", [
    (Net().state_dict(), "no 'format' key"),
    ({"format": "mnist_cnn/checkpoint-v1", "state_dict": {}}, "incomplete"),
])
def test_bad_checkpoint(obj, fragment, tmp_path, capsys):
    torch.save(obj, tmp_path / "bad.pt")
    image = tmp_path / "d.png"
    draw_digit("1").save(image)
    code = cli.main(["predict", str(image), "--checkpoint", str(tmp_path / "bad.pt")])
    assert_one_line_error(code, capsys.readouterr().err, fragment)


def test_not_a_torch_file(tmp_path, capsys):
    (tmp_path / "model.pt").write_text("hello")
    code = cli.main(["evaluate", "--checkpoint", str(tmp_path / "model.pt")])
    assert_one_line_error(code, capsys.readouterr().err, "is not a PyTorch file")


def test_missing_and_unreadable_images(run, tmp_path, capsys):
    checkpoint = str(run["out"] / "model.pt")
    code = cli.main(["predict", str(tmp_path / "nope.png"), "--checkpoint", checkpoint])
    assert_one_line_error(code, capsys.readouterr().err, "no such image file")
    (tmp_path / "text.png").write_text("not a png")
    code = cli.main(["predict", str(tmp_path / "text.png"), "--checkpoint", checkpoint])
    assert_one_line_error(code, capsys.readouterr().err, "not an image file")
    blank = tmp_path / "blank.png"
    draw_digit("1").point(lambda v: 255).save(blank)
    code = cli.main(["predict", str(blank), "--checkpoint", checkpoint])
    assert_one_line_error(code, capsys.readouterr().err, "no digit found")


def test_bad_data(unverified, tmp_path, capsys):
    root = synthetic_mnist(tmp_path)
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x09abc")
    code = cli.main(["train", "--dry-run", "--no-progress", "--data-dir", str(root), "--out", str(tmp_path / "o")])
    assert_one_line_error(code, capsys.readouterr().err, "t10k-labels-idx1-ubyte")


def test_bad_course_yml(monkeypatch, tmp_path, capsys):
    (tmp_path / "course.yml").write_text("recipes: [\n")
    monkeypatch.setenv("MNIST_CNN_COURSE", str(tmp_path / "course.yml"))
    code = cli.main(["train", "--dry-run"])
    assert_one_line_error(code, capsys.readouterr().err, "not valid YAML")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu(capsys):
    code = cli.main(["predict", "x.png", "--device", "cuda"])
    assert_one_line_error(code, capsys.readouterr().err, "CUDA is not available")


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    assert cli.main(["train", "--epochs", "0"]) == 2
    assert "must be at least 1" in capsys.readouterr().err
    assert cli.main(["train", "--recipe", "slow"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_ctrl_c_exits_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "cmd_fetch", interrupted)
    assert cli.main(["fetch"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_errors_at_the_real_entry_point(tmp_path):
    done = subprocess.run([sys.executable, "-m", "mnist_cnn", "evaluate", "--checkpoint", str(tmp_path / "x.pt")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert_one_line_error(done.returncode, done.stderr, "no such checkpoint")
    assert done.stdout == ""
