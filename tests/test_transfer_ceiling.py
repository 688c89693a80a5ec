"""The transfer ceilings of ``benchmarks.surrogate_nb201`` on planted source tables."""

import numpy as np
import pandas as pd

from benchmarks.surrogate_nb201 import transfer_ceiling


def sources(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """(n, 3) positive latencies in ms of three unrelated planted devices."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(np.exp(rng.normal(size=(n, 3))), columns=["a", "b", "c"])


def test_a_target_that_is_a_monotone_function_of_one_source_is_ranked_by_it():
    src = sources()
    ceiling = transfer_ceiling(src, 3.0 * src["b"] ** 0.7 + 1.0)
    assert ceiling.best_source == "b"
    assert ceiling.best_source_spearman == 1.0


def test_a_log_linear_mix_of_sources_is_ranked_only_by_the_linear_fit():
    src = sources()
    target = src["a"] ** 0.8 * src["c"] ** 0.6 * 2.0
    ceiling = transfer_ceiling(src, target)
    assert ceiling.linear_spearman > 0.999
    assert ceiling.best_source_spearman < 0.9


def test_a_target_the_sources_do_not_explain_has_a_low_ceiling():
    ceiling = transfer_ceiling(sources(seed=1), sources(seed=2)["a"])
    assert ceiling.linear_spearman < 0.3
