"""Datasets: the shipped digits dataset, synthetic generators for tests, and content
addresses (the service stores and fetches datasets by sha256).

Everything returns plain numpy arrays (features float32, class labels int64), ready for
`shardgrad.tensor(...)` or for upload as npz.
"""

from __future__ import annotations

from .digits import DIGITS_SHA256, load_digits, stratified_split
from .hashing import sha256_of_arrays
from .synthetic import make_classification, make_regression

__all__ = [
    "DIGITS_SHA256",
    "load_digits",
    "make_classification",
    "make_regression",
    "sha256_of_arrays",
    "stratified_split",
]
