"""Small synthetic datasets for tests: exact size, known structure, the same arrays for the
same seed, no files."""

from __future__ import annotations

import numpy as np

__all__ = ["make_classification", "make_regression"]


def _check(name: str, value: int, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an int >= {least}, got {value!r}")


def make_classification(
    n: int = 256,
    n_features: int = 8,
    n_classes: int = 3,
    seed: int = 0,
    *,
    class_sep: float = 3.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs: `(X float32 [n, n_features], y int64 [n])`.

    Each class has a centre drawn from N(0, class_sep^2) per feature and its points add unit
    Gaussian noise, so a larger `class_sep` makes the classes easier to tell apart. Classes
    are balanced (sizes differ by at most one) and the samples come shuffled.
    """
    _check("n", n, 1)
    _check("n_features", n_features, 1)
    _check("n_classes", n_classes, 2)
    rng = np.random.Generator(np.random.PCG64(seed))
    centres = rng.standard_normal((n_classes, n_features)) * class_sep
    y = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    X = centres[y] + rng.standard_normal((n, n_features))
    return X.astype(np.float32), y


def make_regression(
    n: int = 256,
    n_features: int = 8,
    n_targets: int = 1,
    seed: int = 0,
    *,
    noise: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """A noisy linear map: `(X float32 [n, n_features], y float32 [n, n_targets])`.

    `y = X @ W + b + noise * eps` with X, W, b and eps standard normal. y keeps its target
    axis even for one target, so it lines up with an `nn.Linear(n_features, n_targets)`
    output under `MSELoss` without broadcasting.
    """
    _check("n", n, 1)
    _check("n_features", n_features, 1)
    _check("n_targets", n_targets, 1)
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = np.random.Generator(np.random.PCG64(seed))
    W = rng.standard_normal((n_features, n_targets))
    b = rng.standard_normal(n_targets)
    X = rng.standard_normal((n, n_features))
    y = X @ W + b + noise * rng.standard_normal((n, n_targets))
    return X.astype(np.float32), y.astype(np.float32)
