"""NSGA-II with the integer operators every search of this project uses.

Decision vectors are integer indices (see :mod:`moo_compress.decision_space`); pymoo's
real-valued SBX crossover and polynomial mutation act on them as floats and a rounding
repair brings the children back to integers; duplicates are eliminated. The fleet search
(:mod:`moo_compress.search`) and the benchmark baselines (``benchmarks/compare``) both
build their algorithms here.
"""

from __future__ import annotations

import numpy as np
from pymoo.algorithms.moo.nsga2 import NSGA2
from pymoo.operators.crossover.sbx import SBX
from pymoo.operators.mutation.pm import PM
from pymoo.operators.repair.rounding import RoundingRepair


def integer_variation() -> dict:
    """Keyword arguments of a pymoo genetic algorithm: integer SBX (p = 0.9, eta = 15),
    polynomial mutation (eta = 20), rounding repair, duplicate elimination."""
    return {
        "crossover": SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
        "mutation": PM(eta=20, vtype=float, repair=RoundingRepair()),
        "eliminate_duplicates": True,
    }


def make_nsga2(pop_size: int, sampling: np.ndarray) -> NSGA2:
    """NSGA-II of ``pop_size`` with :func:`integer_variation`, starting from the
    ``(pop_size, n_var)`` integer population ``sampling``."""
    return NSGA2(pop_size=pop_size, sampling=sampling, **integer_variation())
