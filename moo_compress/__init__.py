"""moo_compress: fleet-aware multi-objective compression of neural networks.

The public API, importable from the package (each name but ``compress`` is loaded on
first use, so that importing one module does not import them all)::

    from moo_compress import FleetCompressionProblem, FleetSearch, SearchSettings

See ``docs/architecture.md`` for how the pieces fit together.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Eager: once any module imported the submodule ``moo_compress.compress``, the package
# attribute of that name would be the submodule, not the function.
from moo_compress.compress import compress

_LAZY = {
    "AccuracyEvaluator": "moo_compress.accuracy",
    "CompressionConfig": "moo_compress.config",
    "DecisionSpace": "moo_compress.decision_space",
    "Device": "moo_compress.device",
    "Fleet": "moo_compress.fleet",
    "FleetClusters": "moo_compress.fleet_clusters",
    "FleetCompressionProblem": "moo_compress.problem",
    "FleetProblem": "moo_compress.problem",
    "FleetSearch": "moo_compress.search",
    "Measurement": "moo_compress.measurement",
    "MeasurementSession": "moo_compress.session",
    "MeasurementStore": "moo_compress.store",
    "SearchResult": "moo_compress.search_result",
    "SearchSettings": "moo_compress.search_settings",
    "SearchSpace": "moo_compress.search_space",
    "load_problem_class": "moo_compress.problem_file",
}

__all__ = [
    "AccuracyEvaluator",
    "CompressionConfig",
    "DecisionSpace",
    "Device",
    "Fleet",
    "FleetClusters",
    "FleetCompressionProblem",
    "FleetProblem",
    "FleetSearch",
    "Measurement",
    "MeasurementSession",
    "MeasurementStore",
    "SearchResult",
    "SearchSettings",
    "SearchSpace",
    "compress",
    "load_problem_class",
]

if TYPE_CHECKING:
    from moo_compress.accuracy import AccuracyEvaluator
    from moo_compress.config import CompressionConfig
    from moo_compress.decision_space import DecisionSpace
    from moo_compress.device import Device
    from moo_compress.fleet import Fleet
    from moo_compress.fleet_clusters import FleetClusters
    from moo_compress.measurement import Measurement
    from moo_compress.problem import FleetCompressionProblem, FleetProblem
    from moo_compress.problem_file import load_problem_class
    from moo_compress.search import FleetSearch
    from moo_compress.search_result import SearchResult
    from moo_compress.search_settings import SearchSettings
    from moo_compress.search_space import SearchSpace
    from moo_compress.session import MeasurementSession
    from moo_compress.store import MeasurementStore


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'moo_compress' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
