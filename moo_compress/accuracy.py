"""Accuracy evaluators: how good a compressed model is, as a number in [0, 1].

:class:`AccuracyEvaluator` is the interface the search uses: ``evaluate(config)``.
A :class:`ModelEvaluator` compresses a configuration, recovers it (BatchNorm
re-estimation and activation calibration, see :mod:`moo_compress.recovery`) and scores
it; on request it first fine-tunes it for a few steps on the evaluator's training data
(:meth:`AccuracyEvaluator.fine_tuned`). Recorded accuracy (NAS-Bench-201, see
:mod:`moo_compress.nb201`) is the other kind. ``mode`` says what the number is:

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
from moo_compress.recovery import fine_tune, recover
from moo_compress.threads import pinned_threads


class NoTrainingData(ValueError):
    """The evaluator has no training data, so it cannot fine-tune."""


class AccuracyEvaluator(ABC):
    """Scores configurations: a number in [0, 1] per configuration.

    Attributes:
        mode: ``"real"`` or ``"fidelity"``.
        expensive: Whether one evaluation is costly enough that the search should
            model this objective with a surrogate and evaluate only where it is
            uncertain (True), or evaluate every candidate (False).
        concurrent: Whether :meth:`evaluate` may run in several threads at once (a
            search then evaluates a batch on :func:`~moo_compress.threads.
            evaluation_workers` threads).
        finetune_lr: Adam learning rate of :meth:`fine_tuned`.
    """

    mode: str = "real"
    expensive: bool = False
    concurrent: bool = False
    finetune_lr: float = 1e-3

    @abstractmethod
    def evaluate(self, config) -> float:
        """Score of ``config`` in [0, 1]."""

    def fine_tuned(self, config, steps: int) -> float:
        """Score in [0, 1] of ``config`` after a ``steps``-step fine-tune.

        Raises:
            NoTrainingData: by default; evaluators of trainable models override it.
        """
        raise NoTrainingData(f"{type(self).__name__} has no model to fine-tune")

    def training_data(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fine-tuning data, ``(inputs, targets)`` batches (see :class:`ModelEvaluator`);
        a runner asks for it before a search that will fine-tune its front.

        Raises:
            NoTrainingData: by default; evaluators with training data override it.
        """
        raise NoTrainingData(f"{type(self).__name__} has no training data to fine-tune on")


class ModelEvaluator(AccuracyEvaluator):
    """Scores compressed models of one reference model: compress, recover, score.

    Every evaluation runs on one torch intra-op thread
    (:func:`~moo_compress.threads.pinned_threads`), so that a configuration scores the
    same on every machine, and evaluations may run in several threads at once: each
    works on its own copy of the reference.

    Attributes:
        reference: The uncompressed model (eval mode).
        calibration: Input batches, each (B, ...), that recover every compressed model
            (BatchNorm re-estimation, activation ranges; see
            :func:`~moo_compress.recovery.recover`), here and in a model's export.
    """

    reference: nn.Module
    calibration: list[torch.Tensor]
    concurrent = True

    def __init__(self, reference: nn.Module, calibration: list[torch.Tensor]) -> None:
        self.reference = reference.eval()
        self.calibration = calibration
        self._training: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def compressed(self, config: CompressionConfig, finetune_steps: int = 0) -> nn.Module:
        """The compressed, recovered model of ``config`` (eval mode); with
        ``finetune_steps`` > 0 fine-tuned for that many steps on :meth:`training_batches`
        (see :func:`~moo_compress.recovery.fine_tune`) and recovered again."""
        model = recover(compress(self.reference, config), self.calibration)
        if finetune_steps > 0:
            fine_tune(model, self.training_data(), finetune_steps, self.finetune_lr)
            recover(model, self.calibration)
        return model

    def evaluate(self, config: CompressionConfig) -> float:
        """Compress, recover and score ``config``; a number in [0, 1]."""
        return self.fine_tuned(config, 0)

    def fine_tuned(self, config: CompressionConfig, steps: int) -> float:
        """Score in [0, 1] of ``config`` after a ``steps``-step fine-tune (0: none).

        Raises:
            NoTrainingData: for ``steps`` > 0 where the evaluator has no training data.
        """
        with pinned_threads():
            model = self.compressed(config, steps)
            with torch.no_grad():
                return float(self.score(model))

    @abstractmethod
    def score(self, model: nn.Module) -> float:
        """Score an already recovered model, in [0, 1]."""

    def training_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Fine-tuning data: ``(inputs, targets)`` batches, targets either (B,) class
        labels or (B, C) reference logits (see :func:`~moo_compress.recovery.fine_tune`).
        Never the data that :meth:`score` scores. Use :meth:`training_data`, which
        calls it once.

        Raises:
            NoTrainingData: by default; evaluators with training data override it.
        """
        raise NoTrainingData(f"{type(self).__name__} has no training data to fine-tune on")

    def training_data(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """:meth:`training_batches`, built on the first call and kept."""
        if self._training is None:
            self._training = self.training_batches()
        return self._training


class FidelityEvaluator(ModelEvaluator):
    """Fidelity to the uncompressed model on seeded Gaussian inputs.

    The score is the mean cosine similarity between the logits of the compressed and
    the uncompressed model over ``n_inputs`` inputs, clipped to [0, 1]. Both models are
    recovered on the same generated calibration batch (BatchNorm statistics
    re-estimated), so the score isolates what compression changed. Cosine is used
    rather than top-1 agreement because a model without trained weights predicts one
    class for every generated input, which makes agreement meaningless.

    Fine-tuning distils the recovered uncompressed model: ``n_train_batches`` batches
    of ``n_inputs`` further generated inputs (never the scored ones), its logits as
    targets.
    """

    mode = "fidelity"
    expensive = True

    def __init__(
        self,
        reference: nn.Module,
        input_shape: tuple[int, ...],
        n_inputs: int = 8,
        n_calibration: int = 8,
        n_train_batches: int = 4,
        seed: int = 0,
    ) -> None:
        self.generator = torch.Generator().manual_seed(seed)
        self.shape = (n_inputs, *input_shape[1:])
        self.n_train_batches = n_train_batches
        self.inputs = torch.randn(self.shape, generator=self.generator)
        calibration = [torch.randn((n_calibration, *input_shape[1:]), generator=self.generator)]
        super().__init__(reference, calibration)
        # The reference gets the same recovery as every candidate, so that the
        # unpruned float configuration scores exactly 1.
        with pinned_threads(), torch.no_grad():
            self.recovered_reference = recover(copy.deepcopy(self.reference), calibration)
            self.reference_logits = self.recovered_reference(self.inputs)

    def score(self, model: nn.Module) -> float:
        logits = model(self.inputs)
        cosine = nn.functional.cosine_similarity(logits, self.reference_logits, dim=1)
        return float(cosine.mean().clamp(0.0, 1.0))

    def training_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        batches = []
        with pinned_threads(), torch.no_grad():
            for _ in range(self.n_train_batches):
                inputs = torch.randn(self.shape, generator=self.generator)
                batches.append((inputs, self.recovered_reference(inputs)))
        return batches


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageFolderEvaluator(ModelEvaluator):
    """Top-1 accuracy on a labelled image folder, e.g. ImageNet validation data.

    The folder holds one sub-folder per class (``val/n01440764/*.JPEG`` ...); classes are
    indexed in sorted folder-name order, which is torchvision's ImageNet class order.
    A seeded random subset of ``n_images`` images is scored and a disjoint subset of
    ``n_calibration`` images recovers each candidate. Images are resized to
    ``resize`` (shorter side), centre-cropped to ``crop`` and normalised with the
    ImageNet mean and std, as torchvision's classification weights expect.

    Fine-tuning needs ``train_folder`` (same layout and classes, e.g. ImageNet train):
    ``n_train`` seeded random images of it, loaded on the first fine-tune. Without
    it, :meth:`training_batches` raises :class:`NoTrainingData`.

    Raises:
        ValueError: if a folder does not exist, or its class count differs from the
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
        train_folder: str | Path | None = None,
        n_train: int = 512,
    ) -> None:
        self.transform = T.Compose(
            [
                T.Resize(resize),
                T.CenterCrop(crop),
                T.ToTensor(),
                T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
            ]
        )
        with torch.no_grad():
            self.n_outputs = reference.eval()(torch.zeros(1, 3, crop, crop)).shape[1]
        data = self._folder(folder)
        if train_folder is not None:
            self._folder(train_folder)  # bad input is reported now, not at fine-tune time
        self.train_folder, self.n_train = train_folder, n_train
        self.batch_size, self.seed = batch_size, seed
        order = np.random.default_rng(seed).permutation(len(data))
        calibration = _batches(Subset(data, order[:n_calibration].tolist()), batch_size)
        self.scored = _batches(
            Subset(data, order[n_calibration : n_calibration + n_images].tolist()), batch_size
        )
        super().__init__(reference, [images for images, _ in calibration])

    def _folder(self, folder: str | Path) -> ImageFolder:
        """The labelled images of ``folder``, checked against the model's outputs."""
        if not Path(folder).is_dir():
            raise ValueError(f"image folder {str(folder)!r} does not exist")
        data = ImageFolder(str(folder), transform=self.transform)
        if len(data.classes) != self.n_outputs:
            raise ValueError(
                f"image folder {str(folder)!r} has {len(data.classes)} classes, the model has "
                f"{self.n_outputs} outputs"
            )
        return data

    def score(self, model: nn.Module) -> float:
        correct = sum(int((model(x).argmax(1) == y).sum()) for x, y in self.scored)
        return correct / sum(len(y) for _, y in self.scored)

    def training_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        if self.train_folder is None:
            raise NoTrainingData(
                "ImageFolderEvaluator has no training folder to fine-tune on; "
                "pass train_folder= (one sub-folder per class)"
            )
        data = self._folder(self.train_folder)
        order = np.random.default_rng(self.seed).permutation(len(data))[: self.n_train]
        return _batches(Subset(data, order.tolist()), self.batch_size)


def _batches(dataset: Subset, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Load a subset once into memory as (images, labels) batches."""
    return list(DataLoader(dataset, batch_size=batch_size, shuffle=False))


class DigitsEvaluator(ModelEvaluator):
    """Top-1 accuracy on the validation split of the scikit-learn digits (8x8 images).

    Candidates are recovered on the first ``n_calibration`` images of the train split
    (in ``batch_size`` batches) and scored on the 360 validation images; the search never
    sees the test split, which :meth:`test_accuracy` scores for reporting. One
    evaluation of a ResNet-8 takes a few tens of ms, so every candidate is evaluated.
    Fine-tuning trains on the whole train split, in seeded shuffled batches of
    ``finetune_batch_size``.
    """

    mode = "real"
    expensive = False
    finetune_lr = 3e-3  # the training rate; at 1e-3, 10 steps recovered half as much

    def __init__(
        self,
        reference: nn.Module,
        splits: DigitsSplits | None = None,
        n_calibration: int = 256,
        batch_size: int = 128,
        finetune_batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        self.splits = splits or load_digits_splits(seed)
        self.finetune_batch_size, self.seed = finetune_batch_size, seed
        calibration = self.splits.images["train"][:n_calibration].split(batch_size)
        super().__init__(reference, list(calibration))

    def training_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        images, labels = self.splits.images["train"], self.splits.labels["train"]
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.seed))
        return [(images[i], labels[i]) for i in order.split(self.finetune_batch_size)]

    def score(self, model: nn.Module) -> float:
        return self.score_split(model, "val")

    def score_split(self, model: nn.Module, split: str) -> float:
        """Top-1 accuracy in [0, 1] of a recovered ``model`` on ``split``
        (``"train"``, ``"val"`` or ``"test"``)."""
        return top1_accuracy(model, self.splits.images[split], self.splits.labels[split])

    def test_accuracy(self, config: CompressionConfig, finetune_steps: int = 0) -> float:
        """Compress, recover (and fine-tune, see :meth:`compressed`) ``config`` as
        :meth:`fine_tuned` does; top-1 accuracy on the test split."""
        with pinned_threads():
            return self.score_split(self.compressed(config, finetune_steps), "test")


def top1_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` (put in eval mode) on (N, ...) images."""
    with torch.no_grad():
        return float((model.eval()(images).argmax(1) == labels).float().mean())
