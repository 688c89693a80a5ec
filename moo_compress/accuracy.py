"""Accuracy evaluators: how good a compressed model is, as a number in [0, 1].

Every evaluator compresses a configuration, recovers it (BatchNorm re-estimation and
activation calibration, see :mod:`moo_compress.recovery`) and scores it. ``mode`` says
what the number is:

* ``"real"``: top-1 accuracy on labelled data;
* ``"fidelity"``: agreement with the uncompressed model on generated inputs, used
  where no labelled data exists. It is never called accuracy.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms as T
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import ImageFolder

from moo_compress.compress import compress
from moo_compress.config import CompressionConfig
from moo_compress.digits import DigitsSplits, load_digits_splits
from moo_compress.recovery import recover


class AccuracyEvaluator(ABC):
    """Scores compressed models of one reference model.

    Attributes:
        mode: ``"real"`` or ``"fidelity"``.
        expensive: Whether one evaluation is costly enough that the search should
            model this objective with a surrogate and evaluate only where it is
            uncertain (True), or evaluate every candidate (False).
    """

    mode: str = "real"
    expensive: bool = False

    def __init__(self, reference: nn.Module, calibration: list[torch.Tensor]) -> None:
        self.reference = reference.eval()
        self.calibration = calibration

    def evaluate(self, config: CompressionConfig) -> float:
        """Compress, recover and score ``config``; a number in [0, 1]."""
        model = recover(compress(self.reference, config), self.calibration)
        with torch.no_grad():
            return float(self.score(model))

    @abstractmethod
    def score(self, model: nn.Module) -> float:
        """Score an already recovered model, in [0, 1]."""


class FidelityEvaluator(AccuracyEvaluator):
    """Fidelity to the uncompressed model on seeded Gaussian inputs.

    The score is the mean cosine similarity between the logits of the compressed and
    the uncompressed model over ``n_inputs`` inputs, clipped to [0, 1]. Both models are
    recovered on the same generated calibration batch (BatchNorm statistics
    re-estimated), so the score isolates what compression changed. Cosine is used
    rather than top-1 agreement because a model without trained weights predicts one
    class for every generated input, which makes agreement meaningless.
    """

    mode = "fidelity"
    expensive = True

    def __init__(
        self,
        reference: nn.Module,
        input_shape: tuple[int, ...],
        n_inputs: int = 8,
        n_calibration: int = 8,
        seed: int = 0,
    ) -> None:
        generator = torch.Generator().manual_seed(seed)
        shape = (n_inputs, *input_shape[1:])
        self.inputs = torch.randn(shape, generator=generator)
        calibration = [torch.randn((n_calibration, *input_shape[1:]), generator=generator)]
        super().__init__(reference, calibration)
        # The reference gets the same recovery as every candidate, so that the
        # unpruned float configuration scores exactly 1.
        recovered = recover(copy.deepcopy(self.reference), calibration)
        with torch.no_grad():
            self.reference_logits = recovered(self.inputs)

    def score(self, model: nn.Module) -> float:
        logits = model(self.inputs)
        cosine = nn.functional.cosine_similarity(logits, self.reference_logits, dim=1)
        return float(cosine.mean().clamp(0.0, 1.0))


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFolderEvaluator(AccuracyEvaluator):
    """Top-1 accuracy on a labelled image folder, e.g. ImageNet validation data.

    The folder holds one sub-folder per class (``val/n01440764/*.JPEG`` ...); classes are
    indexed in sorted folder-name order, which is torchvision's ImageNet class order.
    A seeded random subset of ``n_images`` images is scored and a disjoint subset of
    ``n_calibration`` images recovers each candidate. Images are resized to
    ``resize`` (shorter side), centre-cropped to ``crop`` and normalised with the
    ImageNet mean and std, as torchvision's classification weights expect.

    Raises:
        ValueError: if the folder does not exist, or its class count differs from the
            model's number of outputs.
    """

    mode = "real"
    expensive = True

    def __init__(
        self,
        reference: nn.Module,
        folder: str | Path,
        n_images: int = 500,
        n_calibration: int = 64,
        batch_size: int = 50,
        resize: int = 256,
        crop: int = 224,
        seed: int = 0,
    ) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"image folder {str(folder)!r} does not exist")
        transform = T.Compose(
            [
                T.Resize(resize),
                T.CenterCrop(crop),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )
        data = ImageFolder(str(folder), transform=transform)
        with torch.no_grad():
            n_outputs = reference.eval()(torch.zeros(1, 3, crop, crop)).shape[1]
        if len(data.classes) != n_outputs:
            raise ValueError(
                f"image folder {str(folder)!r} has {len(data.classes)} classes, the model has "
                f"{n_outputs} outputs"
            )
        order = np.random.default_rng(seed).permutation(len(data))
        calibration = _batches(Subset(data, order[:n_calibration].tolist()), batch_size)
        self.scored = _batches(
            Subset(data, order[n_calibration : n_calibration + n_images].tolist()), batch_size
        )
        super().__init__(reference, [images for images, _ in calibration])

    def score(self, model: nn.Module) -> float:
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in self.scored)
        return correct / sum(len(y) for _, y in self.scored)


def _batches(dataset: Subset, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Load a subset once into memory as (images, labels) batches."""
    return list(DataLoader(dataset, batch_size=batch_size, shuffle=False))


class DigitsEvaluator(AccuracyEvaluator):
    """Top-1 accuracy on the validation split of the scikit-learn digits (8x8 images).

    Candidates are recovered on the first ``n_calibration`` images of the train split
    (in ``batch_size`` batches) and scored on the 360 validation images; the search never
    sees the test split, which :meth:`test_accuracy` scores for reporting. One
    evaluation of a ResNet-8 takes a few tens of ms, so every candidate is evaluated.
    """

    mode = "real"
    expensive = False

    def __init__(
        self,
        reference: nn.Module,
        splits: DigitsSplits | None = None,
        n_calibration: int = 256,
        batch_size: int = 128,
        seed: int = 0,
    ) -> None:
        self.splits = splits or load_digits_splits(seed)
        calibration = self.splits.images["train"][:n_calibration].split(batch_size)
        super().__init__(reference, list(calibration))

    def score(self, model: nn.Module) -> float:
        return self.score_split(model, "val")

    def score_split(self, model: nn.Module, split: str) -> float:
        """Top-1 accuracy in [0, 1] of a recovered ``model`` on ``split``
        (``"train"``, ``"val"`` or ``"test"``)."""
        return top1_accuracy(model, self.splits.images[split], self.splits.labels[split])

    def test_accuracy(self, config: CompressionConfig) -> float:
        """Compress and recover ``config`` as :meth:`evaluate` does; top-1 accuracy on
        the test split."""
        return self.score_split(recover(compress(self.reference, config), self.calibration), "test")


def top1_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (put in eval mode) on (N, ...) images."""
    with torch.no_grad():
        return float((model.eval()(images).argmax(1) == labels).float().mean())
