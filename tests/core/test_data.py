"""shardgrad.data: the shipped digits dataset, its split, synthetic generators, content
addresses, and the dataset file travelling inside a built wheel."""

from __future__ import annotations

import hashlib
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import shardgrad as sg
from shardgrad.data import (
    DIGITS_SHA256,
    load_digits,
    make_classification,
    make_regression,
    sha256_of_arrays,
    stratified_split,
)

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- digits
def test_digits_arrays_have_the_documented_form():
    X, y = load_digits("all")
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(X * 16, np.round(X * 16))  # pixel counts 0..16, scaled
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    images, y2 = load_digits("all", shape="image")
    assert images.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(images.reshape(1797, 64), X)
    np.testing.assert_array_equal(y2, y)


def test_digits_equal_scikit_learns_copy():
    datasets = pytest.importorskip("sklearn.datasets")
    bunch = datasets.load_digits()
    X, y = load_digits("all", shape="image")
    np.testing.assert_array_equal(X[:, 0] * 16, bunch.images)
    np.testing.assert_array_equal(y, bunch.target)


def test_digits_content_address_matches_the_recorded_one():
    X, y = load_digits("all", shape="image")
    images = np.round(X[:, 0] * 16).astype(np.uint8)
    assert sha256_of_arrays(images, y) == DIGITS_SHA256
    assert DIGITS_SHA256 in (REPO / "core" / "data" / "DIGITS.md").read_text()


def test_digits_split_is_stratified_disjoint_and_complete():
    X_all, y_all = load_digits("all")
    X_tr, y_tr = load_digits("train")
    X_te, y_te = load_digits("test")
    assert (len(y_tr), len(y_te)) == (1438, 359)
    train, test = stratified_split(y_all, 0.2, 0)
    assert not set(train) & set(test) and len(train) + len(test) == 1797
    np.testing.assert_array_equal(X_tr, X_all[train])
    np.testing.assert_array_equal(y_te, y_all[test])
    for c, size in enumerate(np.bincount(y_all)):
        assert np.sum(y_te == c) == math.floor(0.2 * size + 0.5)


def test_split_follows_the_documented_hash_ranking():
    _, y = load_digits("all")
    _, test = stratified_split(y, 0.3, seed=7)
    expected = []
    for c in range(10):
        members = [i for i in range(len(y)) if y[i] == c]
        members.sort(key=lambda i: hashlib.sha256(f"7:{i}".encode()).digest())
        expected += members[: math.floor(0.3 * len(members) + 0.5)]
    assert test.tolist() == sorted(expected)


def test_split_depends_on_seed_and_fraction_only():
    a = load_digits("test", seed=1)[1]
    assert np.array_equal(a, load_digits("test", seed=1)[1])
    X1, _ = load_digits("test", seed=1)
    X2, _ = load_digits("test", seed=2)
    assert not np.array_equal(X1, X2)
    assert len(load_digits("test", test_fraction=0.5)[1]) == 901  # halves rounded up


def test_digits_results_are_fresh_arrays():
    X, y = load_digits("all")
    X[:] = -1
    y[:] = -1
    X2, y2 = load_digits("all")
    assert X2.min() == 0.0 and y2.min() == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"split": "validation"}, {"shape": "square"}, {"test_fraction": 0.0}, {"test_fraction": 1.0}],
)
def test_digits_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        load_digits(**kwargs)


# --------------------------------------------------------------------------- synthetic
def test_make_classification_is_deterministic_balanced_and_learnable():
    X, y = make_classification(300, 5, 4, seed=3)
    assert X.shape == (300, 5) and X.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [75, 75, 75, 75]
    X2, y2 = make_classification(300, 5, 4, seed=3)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)
    assert not np.array_equal(X, make_classification(300, 5, 4, seed=4)[0])
    # Nearest class mean separates the blobs: the labels carry the structure.
    means = np.stack([X[y == c].mean(0) for c in range(4)])
    predicted = np.argmin(((X[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert np.mean(predicted == y) > 0.9


def test_make_regression_is_a_noisy_linear_map():
    X, y = make_regression(500, 6, 2, seed=5, noise=0.1)
    assert X.shape == (500, 6) and y.shape == (500, 2) and X.dtype == y.dtype == np.float32
    assert np.array_equal(y, make_regression(500, 6, 2, seed=5, noise=0.1)[1])
    design = np.hstack([X, np.ones((500, 1), np.float32)]).astype(np.float64)
    coef, *_ = np.linalg.lstsq(design, y.astype(np.float64), rcond=None)
    residual = y - design @ coef
    assert 0.08 < residual.std() < 0.12
    assert make_regression(10, 3)[1].shape == (10, 1)


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_classification(0, 2, 2),
        lambda: make_classification(10, 2, 1),
        lambda: make_classification(10, 0, 2),
        lambda: make_regression(10, 2, 0),
        lambda: make_regression(10, 2, noise=-1.0),
        lambda: make_regression(2.5, 2),
    ],
)
def test_generators_reject_bad_sizes(call):
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------- content addresses
def test_sha256_of_arrays_follows_its_documented_definition():
    X = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = np.array([1, 0], dtype=np.int64)
    digest = hashlib.sha256(b"shardgrad.arrays.v1\n")
    digest.update(b"float32[2, 3]\n" + X.astype("<f4").tobytes())
    digest.update(b"int64[2]\n" + y.astype("<i8").tobytes())
    assert sha256_of_arrays(X, y) == digest.hexdigest()


def test_sha256_of_arrays_ignores_layout_byte_order_and_container():
    X = np.arange(12, dtype=np.float64).reshape(3, 4)
    y = np.array([True, False, True])
    h = sha256_of_arrays(X, y)
    assert sha256_of_arrays(np.asfortranarray(X), y) == h
    assert sha256_of_arrays(X.astype(">f8"), y) == h
    assert sha256_of_arrays(np.ascontiguousarray(X.T).T, y) == h
    assert sha256_of_arrays(sg.tensor(X, requires_grad=True), sg.tensor(y)) == h


def test_sha256_of_arrays_changes_with_values_dtype_shape_and_order():
    X = np.arange(12, dtype=np.float32).reshape(3, 4)
    y = np.arange(3, dtype=np.int64)
    h = sha256_of_arrays(X, y)
    changed = X.copy()
    changed[2, 3] = np.nextafter(changed[2, 3], np.float32(100))
    others = [
        sha256_of_arrays(changed, y),
        sha256_of_arrays(X.view(np.int32), y),  # same bytes, other dtype
        sha256_of_arrays(X.reshape(4, 3), y),  # same bytes, other shape
        sha256_of_arrays(y, X),
        sha256_of_arrays(X),
        sha256_of_arrays(X.reshape(-1)[:6].reshape(2, 3), X.reshape(-1)[6:].reshape(2, 3), y),
    ]
    assert len({h, *others}) == len(others) + 1


def test_sha256_of_arrays_rejects_arrays_without_stable_bytes():
    with pytest.raises(TypeError, match="content address"):
        sha256_of_arrays(np.array(["a", "b"], dtype=object))


# --------------------------------------------------------------------------- packaging
def test_built_wheel_ships_the_dataset_its_notes_and_the_dashboard(tmp_path):
    pytest.importorskip("setuptools")
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*cache*"
    )
    shutil.copytree(REPO, src, ignore=ignore)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("shardgrad-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (target / "shardgrad" / "data" / "digits.npz").is_file()
    assert (target / "shardgrad" / "data" / "DIGITS.md").is_file()
    static = target / "shardgrad" / "service" / "dashboard_static"  # the dashboard's pages
    assert sorted(p.name for p in static.iterdir()) == sorted(
        p.name for p in (REPO / "service" / "dashboard_static").iterdir()
    )
    code = (
        "import shardgrad, sys; X, y = shardgrad.data.load_digits('all');"
        "print(shardgrad.__file__); print(len(y), shardgrad.data.DIGITS_SHA256)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out[0].startswith(str(target))
    assert out[1] == f"1797 {DIGITS_SHA256}"
