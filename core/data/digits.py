"""The digits dataset shipped with shardgrad: 1797 handwritten digits as 8x8 images.

It is scikit-learn's copy of the UCI ML "Optical Recognition of Handwritten Digits" test set
(Alpaydin & Kaynak, CC BY 4.0); see DIGITS.md beside this file. Small enough to ship, real
enough that a model has to learn something to score well, so examples and end-to-end tests
use it without a download.
"""

from __future__ import annotations

import functools
import hashlib
import math
from importlib import resources

import numpy as np

from .hashing import sha256_of_arrays

__all__ = ["DIGITS_SHA256", "load_digits", "stratified_split"]

# sha256_of_arrays(images uint8 [1797, 8, 8], labels int64 [1797]) of digits.npz.
DIGITS_SHA256 = "edf890f3d85a604e5a1329354384c889fd26c77d633d081fbadb96fb8a5a9fc9"


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    """The stored arrays, read and checked once; read-only so no caller can change them."""
    with resources.files(__package__).joinpath("digits.npz").open("rb") as fh, np.load(fh) as npz:
        images, labels = npz["images"], npz["labels"]
    if sha256_of_arrays(images, labels) != DIGITS_SHA256:
        raise RuntimeError(
            "digits.npz does not match its recorded content address: reinstall shardgrad"
        )
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


def stratified_split(
    y: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices (sorted, int64) holding `test_fraction` of every class.

    Within each class the samples are ranked by `sha256(f"{seed}:{index}")` and the first
    `floor(test_fraction * class_size + 0.5)` go to the test set. Hashing instead of a random
    generator keeps a split the same on every numpy version and machine.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {y.shape}")
    test = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        ranked = sorted(
            members.tolist(), key=lambda i: hashlib.sha256(f"{seed}:{i}".encode()).digest()
        )
        test.extend(ranked[: math.floor(test_fraction * len(members) + 0.5)])
    is_test = np.zeros(len(y), dtype=bool)
    is_test[test] = True
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


def load_digits(
    split: str = "train", seed: int = 0, test_fraction: float = 0.2, shape: str = "flat"
) -> tuple[np.ndarray, np.ndarray]:
    """`(X, y)` as fresh numpy arrays: X float32 pixels scaled from 0..16 into [0, 1], y int64
    digits 0..9.

    split: "all" (1797 samples, in the published order), or "train"/"test" from
    `stratified_split(labels, test_fraction, seed)` (1438/359 with the defaults).
    shape: "flat" gives X as [N, 64], "image" as [N, 1, 8, 8] for convolutions.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if shape not in ("flat", "image"):
        raise ValueError(f"shape must be 'flat' or 'image', got {shape!r}")
    images, labels = _raw()
    if split == "all":
        idx = np.arange(len(labels))
    else:
        train, test = stratified_split(labels, test_fraction, seed)
        idx = train if split == "train" else test
    X = images[idx].astype(np.float32) / np.float32(16.0)
    X = X.reshape(len(idx), 64) if shape == "flat" else X.reshape(len(idx), 1, 8, 8)
    return X, labels[idx].copy()
