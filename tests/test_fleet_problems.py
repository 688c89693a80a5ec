"""End-to-end runs of the new kinds of fleet: a mixed-SKU simulated fleet and a large
recorded (NB201) fleet of drifted units; and the nominal devices of the new problems."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moo_compress.nb201 import FILES, data_dir
from moo_compress.problem_file import load_problem_class
from moo_compress.run import main

TESTS = Path(__file__).parent
PROBLEMS = TESTS.parent / "problems"
needs_data = pytest.mark.skipif(
    not all((data_dir() / f).is_file() for f in FILES),
    reason=f"NB201 data not found in {data_dir()} (set MOO_COMPRESS_NB201)",
)


def _run(problem: Path, out: Path, *options: str) -> tuple[dict, pd.DataFrame]:
    args = [str(problem), "--generations", "1", "--pop-size", "8", "--out", str(out)]
    assert main([*args, *options]) == 0
    summary = json.loads((out / "summary.json").read_text())
    return summary, pd.read_csv(out / "front.csv")


def test_mixed_fleet_search_end_to_end(tmp_path: Path) -> None:
    summary, front = _run(TESTS / "problems" / "tiny_mixed_fleet.py", tmp_path / "run")
    representatives = [c["representative"] for c in summary["clusters"]]
    # Both SKUs are found and measured.
    assert any(r.startswith("jetson-nano") for r in representatives)
    assert any(r.startswith("jetson-xavier-nx") for r in representatives)
    assert 0 < summary["measurements"]["latency_total"] <= 120
    assert len(front) > 0 and front["measured"].all()
    assert (front["worst_cluster_latency_ms"] >= front["avg_latency_ms"] - 1e-9).all()


@needs_data
def test_large_recorded_fleet_search_end_to_end(tmp_path: Path) -> None:
    summary, front = _run(PROBLEMS / "nb201_large.py", tmp_path / "run")
    assert summary["n_devices"] == 1000
    clusters = summary["clusters"]
    assert len(clusters) >= 4 and sum(c["size"] for c in clusters) == 1000
    # Every recorded device leads at least one cluster.
    devices = {c["representative"].rsplit("-", 1)[0] for c in clusters}
    assert devices == {"pixel3", "raspi4", "samsung_a50", "samsung_s7"}
    assert 0 < summary["measurements"]["latency_total"] <= 320
    assert len(front) > 0 and front["measured"].all()


def test_digits_mixed_mcu_clusters_by_revision_and_tunes_for_mpic() -> None:
    problem = load_problem_class(PROBLEMS / "resnet8_digits_mixed_mcu.py")(seed=0)
    fleet, clusters = problem.clusters.fleet, problem.clusters
    for k in range(clusters.k):  # every cluster holds units of one hardware revision
        assert len(set(fleet.sku_index[clusters.labels == k])) == 1
    assert len(set(fleet.sku_index)) == 2 and clusters.k >= 2
    from benchmarks.compare.task import Task

    nominal = Task(problem, seed=0).nominal_device()  # the reference SKU, undrifted
    assert nominal.sku.name == "mpic-riscv" and nominal.compute == 1.0
    X = np.array([problem.space.unpruned(bits) for bits in (2, 8)])
    two_bit, eight_bit = nominal.true_latency_ms(X)
    assert two_bit < 0.5 * eight_bit  # MPIC: 2 bits much faster than 8 ...
    per_cluster = clusters.true_cluster_latency(X)
    for k in range(clusters.k):
        sku = fleet.skus[fleet.sku_index[clusters.labels == k][0]].name
        # ... RI5CY: slower (sub-byte operands unpacked in software).
        assert (per_cluster[0, k] > per_cluster[1, k]) == (sku == "ri5cy-riscv")
