"""The digits data, the ResNet-8 trained on it, its cache and the DigitsEvaluator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moo_compress.accuracy import DigitsEvaluator, top1_accuracy
from moo_compress.digits import load_digits_splits
from moo_compress.resnet8 import ResNet8, cache_path, load_or_train_resnet8
from moo_compress.search_space import SearchSpace


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def model(cache) -> ResNet8:
    return load_or_train_resnet8(cache_dir=cache, seed=0)


def test_splits_are_deterministic_disjoint_and_stratified():
    a, b = load_digits_splits(0), load_digits_splits(0)
    for name in ("train", "val", "test"):
        np.testing.assert_array_equal(a.indices[name], b.indices[name])
        assert torch.equal(a.images[name], b.images[name])
        assert a.images[name].shape[1:] == (1, 8, 8)
        assert float(a.images[name].min()) >= 0.0 and float(a.images[name].max()) <= 1.0
    together = np.concatenate([a.indices[n] for n in ("train", "val", "test")])
    assert len(together) == len(set(together)) == 1797
    counts = {
        n: np.bincount(a.labels[n].numpy(), minlength=10) / len(a.labels[n]) for n in a.labels
    }
    assert np.abs(counts["train"] - counts["test"]).max() < 0.01
    assert np.abs(counts["train"] - counts["val"]).max() < 0.01
    assert not np.array_equal(load_digits_splits(1).indices["test"], a.indices["test"])


def test_trained_resnet8_beats_97_percent_and_is_cached(model, cache, monkeypatch):
    splits = load_digits_splits(0)
    assert top1_accuracy(model, splits.images["test"], splits.labels["test"]) >= 0.97
    assert cache_path(cache, 0).is_file()
    monkeypatch.setenv("MOO_COMPRESS_CACHE", str(cache))
    again = load_or_train_resnet8(seed=0)  # from the cache via the environment variable
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_evaluator_separates_8_bit_from_pruned_2_bit(model):
    evaluator = DigitsEvaluator(model)
    assert evaluator.mode == "real" and not evaluator.expensive
    space = SearchSpace.from_model(
        model, torch.zeros(1, 1, 8, 8), bit_widths=(2, 4, 8), channel_multiple=4
    )
    splits = evaluator.splits
    float_val = top1_accuracy(model, splits.images["val"], splits.labels["val"])
    full = space.decode(space.unpruned(8))
    assert evaluator.evaluate(full) == pytest.approx(float_val, abs=0.02)
    assert evaluator.test_accuracy(full) >= 0.96
    x = space.unpruned(2)
    x[: len(space.prune_genes)] = len(space.ratios) - 1
    assert evaluator.evaluate(space.decode(x)) < float_val - 0.3


def test_cache_with_wrong_shapes_names_file_and_tensor(tmp_path):
    state = ResNet8().state_dict()
    state["fc.weight"] = torch.zeros(3, 64)
    path = cache_path(tmp_path, 5)
    torch.save(state, path)
    with pytest.raises(ValueError, match=r"resnet8_digits_seed5\.pt: tensor 'fc.weight'"):
        load_or_train_resnet8(cache_dir=tmp_path, seed=5)


def test_short_fine_tune_recovers_a_heavily_pruned_model(model):
    """80 % pruning of every unit at 8 bits loses most of the accuracy even after BN
    re-estimation; 10 steps on the train split win much of it back, on train and on
    validation images, and leave the reference model untouched."""
    evaluator = DigitsEvaluator(model)
    space = SearchSpace.from_model(
        model, torch.zeros(1, 1, 8, 8), bit_widths=(2, 4, 8), channel_multiple=4
    )
    x = space.unpruned(8)
    x[: len(space.prune_genes)] = len(space.ratios) - 1
    config = space.decode(x)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    before, after = evaluator.compressed(config), evaluator.compressed(config, 10)
    for split in ("train", "val"):
        assert evaluator.score_split(after, split) > evaluator.score_split(before, split) + 0.2
    assert evaluator.fine_tuned(config, 0) == evaluator.evaluate(config)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in reference.items())


def test_truncated_cache_is_rebuilt_with_a_message(model, cache, tmp_path, capsys, monkeypatch):
    """A cache cut short (a kill while it was saved by an older version) is reported in
    one line and rebuilt; the rebuilt file is written atomically (no temporary left)."""
    good = cache_path(cache, 0).read_bytes()
    path = cache_path(tmp_path, 0)
    path.write_bytes(good[: len(good) // 2])
    trained = []

    def train(splits, seed):
        trained.append(seed)
        return model

    monkeypatch.setattr("moo_compress.resnet8.train_resnet8", train)
    again = load_or_train_resnet8(cache_dir=tmp_path, seed=0)
    assert trained == [0] and again is model
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"note: the cached model {path} cannot be read (")
    assert err.endswith("training it again") and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert torch.load(path, weights_only=True).keys() == model.state_dict().keys()
