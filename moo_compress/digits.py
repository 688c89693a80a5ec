"""The scikit-learn handwritten digits: 1,797 labelled 8x8 grey images of 10 classes.

The data ships with scikit-learn (``sklearn.datasets.load_digits``), so no download is
needed. :func:`load_digits_splits` cuts it into fixed, seeded, stratified train /
validation / test splits (60 / 20 / 20 %). Pixels, integers 0..16 in the source, are
divided by 16 to lie in [0, 1]; nothing else is normalised.

The search scores candidates on the validation split and recovers (BatchNorm, activation
ranges) on the train split; the test split is for reporting only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DigitsSplits:
    """Images (N, 1, 8, 8) float32 in [0, 1], labels (N,) int64 and the row indices into
    ``load_digits()`` of each split."""

    images: dict[str, torch.Tensor]
    labels: dict[str, torch.Tensor]
    indices: dict[str, np.ndarray]


def load_digits_splits(seed: int = 0, val: float = 0.2, test: float = 0.2) -> DigitsSplits:
    """Stratified train / validation / test splits, identical for the same ``seed``.

    Args:
        seed: Seed of the shuffling.
        val, test: Fractions of all 1,797 images in the validation and test splits.
    """
    # Imported here: scikit-learn's import pulls in rich, and loading a problem file
    # (this module comes with every problem) should not.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    index = np.arange(len(data.target))
    rest, test_idx = train_test_split(
        index, test_size=test, stratify=data.target, random_state=seed
    )
    train_idx, val_idx = train_test_split(
        rest, test_size=val / (1 - test), stratify=data.target[rest], random_state=seed
    )
    indices = {"train": train_idx, "val": val_idx, "test": test_idx}
    images = torch.from_numpy(data.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(data.target.astype(np.int64))
    return DigitsSplits(
        images={name: images[idx] for name, idx in indices.items()},
        labels={name: labels[idx] for name, idx in indices.items()},
        indices=indices,
    )
