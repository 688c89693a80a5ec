"""Shared fixtures: models and search spaces are costly to trace, so build them once."""

from __future__ import annotations

import pytest
import torch
import torchvision

from moo_compress.quiet import quiet_library_warnings
from moo_compress.search_space import SearchSpace


def pytest_configure(config: pytest.Config) -> None:
    quiet_library_warnings()  # the library warnings every entry point quiets


@pytest.fixture(scope="session")
def resnet50() -> torch.nn.Module:
    torch.manual_seed(0)
    return torchvision.models.resnet50().eval()


@pytest.fixture(scope="session")
def resnet50_space(resnet50: torch.nn.Module) -> SearchSpace:
    """HDAP-style space: one prune gene per bottleneck, per-layer bits (8, 16, 32)."""
    return SearchSpace.from_model(
        resnet50, torch.randn(1, 3, 224, 224), granularity="block", prune_cross_block=False
    )
