"""Outputs of a run: front table, summary, plot and the knee-point model.

Files written in the output folder:

* ``front.csv``: one row per front configuration, columns in :func:`front_frame` and
  ``deploy_at`` (:func:`deployment_labels`: the accuracy budgets at which a user ships
  that row); with
  a fine-tune (``finetune_steps`` > 0) also ``<label>_before_finetune`` and
  ``<label>_after_finetune`` (see :mod:`moo_compress.finetune_front`);
* ``references.csv``: the problem's reference rows (for compression: the unpruned model
  and the FLOPs-uniform pruning), same columns;
* ``summary.json``: what was run and what it cost, see :func:`summary`;
* ``front.png``: the three objective pairs, reference rows marked;
* ``knee/``: the knee-point model, see :mod:`moo_compress.export`.

The set is replaced as a whole, ``summary.json`` last (see :mod:`moo_compress.output_set`):
a reader sees the previous complete set or the new one, never a mix.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from rich.table import Table  # noqa: E402

from moo_compress.atomic_write import step  # noqa: E402
from moo_compress.finetune_front import FinetuneScores, add_finetune_columns  # noqa: E402
from moo_compress.fleet_clusters import FleetClusters  # noqa: E402
from moo_compress.front_choice import deployment_rows  # noqa: E402
from moo_compress.numeric_environment import numeric_environment  # noqa: E402
from moo_compress.output_set import publish, staged_outputs  # noqa: E402
from moo_compress.problem import FleetProblem  # noqa: E402
from moo_compress.search_result import MeasuredRows, SearchResult  # noqa: E402


def front_frame(problem: FleetProblem, rows: MeasuredRows, clusters: FleetClusters) -> pd.DataFrame:
    """Rows of measured configurations, objectives on ``clusters`` (a search's final
    clusters: a degraded one does not count).

    Columns: ``accuracy`` or ``fidelity`` (measured), ``avg_latency_ms`` and
    ``worst_cluster_latency_ms`` (from measured cluster latencies),
    ``cluster_<k>_latency_ms`` (measured medians), ``predicted_avg_latency_ms`` and
    ``predicted_worst_cluster_latency_ms`` (the surrogate's means, for comparison),
    the problem's analytic cost columns (compression: ``macs``, ``params``,
    ``size_bits``), ``measured`` (True: every latency and accuracy value in the row was
    measured), ``config`` (JSON); on simulated
    fleets also ``true_avg_latency_ms`` and ``true_worst_cluster_latency_ms`` from
    every device's noiseless latency, for evaluation only.
    """
    X = np.atleast_2d(rows.X)
    latency, predicted = rows.latency, rows.predicted_latency
    frame = pd.DataFrame(
        {
            problem.accuracy_label: rows.accuracy,
            "avg_latency_ms": clusters.fleet_average(latency),
            "worst_cluster_latency_ms": clusters.worst_case(latency),
            **{f"cluster_{k}_latency_ms": latency[:, k] for k in range(clusters.k)},
            "predicted_avg_latency_ms": clusters.fleet_average(predicted),
            "predicted_worst_cluster_latency_ms": clusters.worst_case(predicted),
            **problem.cost_columns(X),
            "measured": True,
            "config": [problem.space.decode(x).to_json() for x in X],
        }
    )
    truth = clusters.true_objectives(X)
    if truth is not None:
        frame["true_avg_latency_ms"], frame["true_worst_cluster_latency_ms"] = truth
    return frame


def deployment_labels(F: np.ndarray, baseline_loss: float, drops: tuple[float, ...]) -> list[str]:
    """For each row of the measured front's ``F`` (N, 3) ``[loss, avg ms, worst ms]``,
    the accuracy budgets at which a user deploys it (the row fastest in the worst
    cluster within that drop below the baseline's measured ``baseline_loss``, see
    :func:`~moo_compress.front_choice.deployment_rows`), as ``"-0.5pt -1pt"``; ``""``
    where none."""
    labels: list[list[str]] = [[] for _ in range(len(F))]
    for drop in drops:
        for row in deployment_rows(F, baseline_loss, (drop,)):
            labels[row].append(f"-{100 * drop:g}pt")
    return [" ".join(label) for label in labels]


def knee_index(F: np.ndarray) -> int:
    """Row of ``F`` (N, 3), all minimised, closest to the ideal point after scaling each
    objective to [0, 1] over the front."""
    span = np.ptp(F, axis=0)
    scaled = (F - F.min(axis=0)) / np.where(span > 0, span, 1.0)
    return int(np.argmin(np.linalg.norm(scaled, axis=1)))


def write_outputs(
    problem: FleetProblem,
    result: SearchResult,
    out: Path,
    wall_seconds: float,
    finetune: FinetuneScores | None = None,
    run_id: str = "",
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Write every output file of ``result`` as one new set (the previous set stays
    until the new one is complete, see :mod:`moo_compress.output_set`); return the
    front, the reference rows and the summary. ``finetune``: the fine-tuned scores of its
    rows, if any (the front itself does not change). ``run_id``: recorded in the
    summary."""
    front = front_frame(problem, result.front, result.clusters)
    references = front_frame(problem, result.reference_rows, result.clusters)
    references.insert(0, "reference", result.references)
    finetune_info: dict = {"steps": 0 if finetune is None else finetune.steps}
    if finetune is not None:
        label = problem.accuracy_label
        add_finetune_columns(front, label, finetune.front)
        add_finetune_columns(references, label, finetune.references)
        gain = front[f"{label}_after_finetune"] - front[label]
        finetune_info["mean_gain"] = float(gain.mean()) if len(front) else None
    F = problem.objectives(result.accuracy, result.latency, result.clusters)
    baseline = np.flatnonzero((problem.baseline() == result.reference_rows.X).all(axis=1))
    if len(baseline):
        baseline_loss = 1.0 - float(result.reference_rows.accuracy[baseline[0]])
        front["deploy_at"] = deployment_labels(F, baseline_loss, problem.deployment_drops)
    knee = knee_index(F) if len(front) else None
    with staged_outputs(out) as folder:
        step("stage front.csv")
        front.to_csv(folder / "front.csv", index=False)
        step("stage references.csv")
        references.to_csv(folder / "references.csv", index=False)
        step("stage knee/")
        knee_files = problem.export(result.X[knee], folder / "knee") if knee is not None else []
        step("stage front.png")
        plot_front(problem, front, references, folder / "front.png")
        info = {
            "run_id": run_id,
            **summary(problem, result, front, wall_seconds, knee, knee_files, finetune_info),
        }
        publish(out, folder, info)
    return front, references, info


def summary(
    problem: FleetProblem,
    result: SearchResult,
    front: pd.DataFrame,
    wall_seconds: float,
    knee: int | None,
    knee_files: list[str],
    finetune: dict,
) -> dict:
    """The ``summary.json`` content. ``finetune``: ``steps`` (0: none) and, after a
    fine-tune, ``mean_gain`` of the front's accuracy (fraction, after minus before)."""
    clusters = result.clusters
    predicted = front["predicted_avg_latency_ms"].to_numpy()
    measured = front["avg_latency_ms"].to_numpy()
    fleet = clusters.fleet
    return {
        "problem": problem.name,
        "problem_file": _problem_file(problem),
        "seed": result.settings.seed,
        "accuracy_mode": problem.accuracy_mode,
        "n_devices": len(fleet) if fleet is not None else clusters.k,
        "clusters": clusters.describe(),
        "measurements": {
            "latency_per_cluster": result.measurements,
            "latency_total": int(sum(result.measurements)),
            "latency_budget": result.settings.budget,
            "accuracy": result.accuracy_evaluations,
        },
        "degraded_clusters": {str(c): reason for c, reason in result.degraded.items()},
        "hypervolume": result.hypervolume,
        "hypervolume_definition": "objectives scaled to [1 - accuracy, avg / avg_baseline, "
        "worst / worst_baseline] (the uncompressed baseline's latencies predicted after the "
        "initial design), "
        "reference point (1, 1.1, 1.1)",
        "wall_seconds": round(wall_seconds, 2),
        "surrogate_quality_on_front": {
            "avg_latency_mape_percent": float(np.mean(np.abs(predicted / measured - 1)) * 100)
            if len(front)
            else None,
        },
        "front_size": len(front),
        "front_rows_dominated_by_a_reference_row": result.dominated_by_reference,
        "knee_row": knee,
        "knee_files": knee_files,
        "finetune": finetune,
        "search_space": problem.space.describe(),
        "settings": vars(result.settings),
        "acquisition": result.acquisition,
        "numeric_environment": numeric_environment(),
    }


def plot_front(
    problem: FleetProblem, front: pd.DataFrame, references: pd.DataFrame, path: Path
) -> None:
    """Three panels: accuracy vs average latency, accuracy vs worst-cluster latency and
    average vs worst-cluster latency; reference rows as labelled crosses."""
    acc = problem.accuracy_label
    pairs = [
        ("avg_latency_ms", acc),
        ("worst_cluster_latency_ms", acc),
        ("avg_latency_ms", "worst_cluster_latency_ms"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (x, y) in zip(axes, pairs, strict=True):
        ax.scatter(front[x], front[y], s=18, label="front (measured)")
        for _, row in references.iterrows():
            ax.scatter(row[x], row[y], marker="x", s=60, label=row["reference"])
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{problem.name}: measured Pareto front ({acc})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def front_table(problem: FleetProblem, front: pd.DataFrame, references: pd.DataFrame) -> Table:
    """A rich table of the front with the reference rows first, and the fine-tuned
    accuracy where there is one."""
    acc = problem.accuracy_label
    tuned = f"{acc}_after_finetune"
    scores = [acc, tuned] if tuned in front.columns else [acc]
    table = Table(title=f"{problem.name}: measured front ({len(front)} configurations)")
    costs = [("MMACs", "macs", 1e6), ("size MB", "size_bits", 8e6)]
    costs = [(title, column, unit) for title, column, unit in costs if column in front]
    deploy = ["deploy at"] if "deploy_at" in front else []
    headers = ["row", *scores, "avg ms", "worst ms", *(c[0] for c in costs), "measured", *deploy]
    for column in headers:
        table.add_column("fine-tuned" if column == tuned else column, justify="right")
    rows = [(r["reference"], r) for _, r in references.iterrows()]
    rows += [(str(i), r) for i, r in front.iterrows()]
    for name, r in rows:
        table.add_row(
            name,
            *(f"{r[column]:.4f}" for column in scores),
            f"{r['avg_latency_ms']:.2f}",
            f"{r['worst_cluster_latency_ms']:.2f}",
            *(_short(r[column] / unit) for _, column, unit in costs),
            "yes" if r["measured"] else "no",
            *([str(r.get("deploy_at", ""))] if deploy else []),
        )
    return table


def _short(value: float) -> str:
    """Three significant digits without exponent notation: 4122, 102, 0.0798."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _problem_file(problem: FleetProblem) -> str | None:
    """Absolute path of the file that defines ``problem``'s class (where its own methods
    were compiled), which ``python -m moo_compress.export`` reloads; None if unknown."""
    for value in vars(type(problem)).values():
        code = getattr(value, "__code__", None)
        if code is not None and Path(code.co_filename).is_file():
            return str(Path(code.co_filename).resolve())
    return None
