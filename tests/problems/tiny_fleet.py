"""A tiny problem for end-to-end tests: a small CNN on a 40-device Cortex-A72 fleet
(two clusters at seed 3)."""

from __future__ import annotations

import torch
from torch import nn

from moo_compress.devices.skus import get_sku
from moo_compress.fleet import Fleet
from moo_compress.problem import FleetCompressionProblem


class TinyFleet(FleetCompressionProblem):
    name = "tiny_fleet"
    space_options = {"bit_widths": (8, 16, 32), "channel_multiple": 4}
    budget = 80
    accuracy_budget = 24
    pop_size = 8
    generations = 3

    def build_model(self):
        model = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1, stride=2),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(64, 10),
        )
        return model, torch.randn(1, 3, 32, 32)

    def build_fleet(self):
        return Fleet.field_aged(get_sku("cortex-a72"), n=40, seed=self.seed)
