"""Accuracy evaluators: fidelity, labelled image folders, recovery, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from moo_compress.accuracy import FidelityEvaluator, ImageFolderEvaluator, NoTrainingData
from moo_compress.compress import compress
from moo_compress.recovery import fine_tune, reestimate_batchnorm
from moo_compress.search_space import SearchSpace
from moo_compress.weights import load_weights_file


def _cnn(classes: int = 2) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, classes),
    ).eval()


def _image_folder(root, classes: int = 2, per_class: int = 6):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / f"class{c}" / f"{i}.png")
    return root


def test_fidelity_is_one_for_the_uncompressed_model_and_lower_when_pruned():
    model = _cnn()
    space = SearchSpace.from_model(model, torch.randn(1, 3, 16, 16), channel_multiple=1)
    evaluator = FidelityEvaluator(model, (1, 3, 16, 16), n_inputs=16)
    assert evaluator.mode == "fidelity"
    assert evaluator.evaluate(space.decode(space.unpruned())) == pytest.approx(1.0, abs=1e-6)
    x = space.unpruned(bits=8)
    x[: len(space.prune_genes)] = 8
    assert evaluator.evaluate(space.decode(x)) < 0.999


def test_image_folder_accuracy_is_a_real_share_of_correct_labels(tmp_path):
    folder = _image_folder(tmp_path / "val")
    model = _cnn()
    evaluator = ImageFolderEvaluator(model, folder, n_images=8, n_calibration=4, resize=32, crop=32)
    assert evaluator.mode == "real"
    space = SearchSpace.from_model(model, torch.randn(1, 3, 32, 32))
    accuracy = evaluator.evaluate(space.decode(space.unpruned()))
    assert accuracy in {i / 8 for i in range(9)}


def test_image_folder_errors_name_the_path_and_counts(tmp_path):
    with pytest.raises(ValueError, match="image folder '.*nowhere' does not exist"):
        ImageFolderEvaluator(_cnn(), tmp_path / "nowhere")
    folder = _image_folder(tmp_path / "val3", classes=3, per_class=1)
    with pytest.raises(ValueError, match="has 3 classes, the model has 2 outputs"):
        ImageFolderEvaluator(_cnn(2), folder, resize=32, crop=32)


def test_weights_that_do_not_fit_name_the_layer(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(_cnn(classes=5).state_dict(), path)
    with pytest.raises(ValueError, match=r"tensor '8.weight' has shape \(5, 16\)"):
        load_weights_file(_cnn(classes=2), path)
    with pytest.raises(ValueError, match="does not exist"):
        load_weights_file(_cnn(), tmp_path / "missing.pth")


def test_batchnorm_reestimation_restores_a_pruned_model():
    """EagleEye: after pruning, re-estimated BN statistics bring the outputs back
    towards the reference (here measured as fidelity of logits on real-like inputs)."""
    torch.manual_seed(0)
    model = _cnn(classes=4)
    inputs = torch.randn(64, 3, 16, 16) * 3 + 1  # statistics far from BN's defaults
    reestimate_batchnorm(model, [inputs])
    space = SearchSpace.from_model(model, inputs[:1], protected=["8"], channel_multiple=1)
    x = space.unpruned()
    x[: len(space.prune_genes)] = 4
    pruned = compress(model, space.decode(x))
    with torch.no_grad():
        reference = model(inputs)
        before = nn.functional.mse_loss(pruned.eval()(inputs), reference)
        after = nn.functional.mse_loss(reestimate_batchnorm(pruned, [inputs])(inputs), reference)
    assert after < before


def test_fidelity_fine_tune_distils_the_uncompressed_model():
    model = _cnn()
    space = SearchSpace.from_model(model, torch.randn(1, 3, 16, 16), channel_multiple=1)
    evaluator = FidelityEvaluator(model, (1, 3, 16, 16), n_inputs=16)
    x = space.unpruned(bits=8)
    x[: len(space.prune_genes)] = 7
    config = space.decode(x)
    inputs, targets = evaluator.training_data()[0]
    assert targets.is_floating_point() and not torch.equal(inputs, evaluator.inputs)
    assert evaluator.fine_tuned(config, 10) > evaluator.evaluate(config) + 0.01


def test_image_folder_fine_tunes_only_with_a_training_folder(tmp_path):
    folder = _image_folder(tmp_path / "val")
    options = {"n_images": 8, "n_calibration": 4, "resize": 32, "crop": 32, "batch_size": 4}
    without = ImageFolderEvaluator(_cnn(), folder, **options)
    with pytest.raises(
        NoTrainingData, match="no training folder to fine-tune on; pass train_folder="
    ):
        without.training_data()
    with pytest.raises(ValueError, match="image folder '.*missing' does not exist"):
        ImageFolderEvaluator(_cnn(), folder, train_folder=tmp_path / "missing", **options)
    train = _image_folder(tmp_path / "train", per_class=4)
    evaluator = ImageFolderEvaluator(_cnn(), folder, train_folder=train, n_train=6, **options)
    batches = evaluator.training_data()
    assert sum(len(labels) for _, labels in batches) == 6
    assert all(labels.dtype == torch.int64 for _, labels in batches)
    space = SearchSpace.from_model(_cnn(), torch.randn(1, 3, 32, 32))
    assert evaluator.fine_tuned(space.decode(space.unpruned()), 2) in {i / 8 for i in range(9)}


def test_fine_tune_refuses_zero_steps():
    with pytest.raises(ValueError, match="steps >= 1 and at least one batch; got steps=0"):
        fine_tune(_cnn(), [(torch.zeros(1, 3, 8, 8), torch.zeros(1, dtype=torch.int64))], 0)
