"""Regenerate `digits.npz` from scikit-learn's copy of the UCI handwritten digits.

scikit-learn is needed only here, never at runtime:

    pip install scikit-learn
    python -m shardgrad.data.make_digits          # or: python core/data/make_digits.py

The file stores the pixels exactly as published (integers 0..16, as uint8) and the labels as
int64; `load_digits` scales the pixels. The printed content address must match
`DIGITS_SHA256` in digits.py and the one in DIGITS.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def build() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # noqa: PLC0415 - a development-time tool

    bunch = load_digits()
    images = np.asarray(bunch.images)
    if not np.array_equal(images, np.round(images)) or images.min() < 0 or images.max() > 16:
        raise SystemExit("unexpected digits data: pixels should be integers in 0..16")
    return images.astype(np.uint8), np.asarray(bunch.target, dtype=np.int64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("digits.npz"))
    args = parser.parse_args()
    images, labels = build()
    np.savez_compressed(args.out, images=images, labels=labels)

    from shardgrad.data.hashing import sha256_of_arrays  # noqa: PLC0415

    print(
        f"wrote {args.out} ({args.out.stat().st_size} bytes): images {images.shape} uint8, labels {labels.shape} int64"
    )
    print(f"sha256_of_arrays(images, labels) = {sha256_of_arrays(images, labels)}")


if __name__ == "__main__":
    main()
