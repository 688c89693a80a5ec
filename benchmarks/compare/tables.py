"""The markdown tables of a comparison: per problem, every row against ``ours``.

Cells are ``mean ± 95 % CI`` over the paired seeds; the ``ours W/T/L`` and ``p``
columns compare ``ours`` with the row seed by seed (:func:`benchmarks.compare.stats.paired`:
wins, ties and losses *of ours*, Wilcoxon signed-rank p-value).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from benchmarks.compare.anytime import THRESHOLD
from benchmarks.compare.regret import DROPS
from benchmarks.compare.stats import TIES, mean_ci, paired

OURS = "ours"


def drop_label(drop: float) -> str:
    """``0.005`` -> ``"0.5pt"``: an accuracy floor as points below the baseline."""
    return f"{drop * 100:g}pt"


def _cell(values: pd.Series, digits: int) -> str:
    mean, half = mean_ci(values.to_numpy(dtype=float))
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def _versus(rows: pd.DataFrame, name: str, column: str, higher: bool, tie: float) -> str:
    """``W/T/L, p`` of ours against row ``name`` on ``column`` ("—" for ours)."""
    if name == OURS or OURS not in rows["method"].values:
        return "—"
    ours = rows[rows["method"] == OURS].set_index("seed")[column]
    other = rows[rows["method"] == name].set_index("seed")[column]
    seeds = ours.index.intersection(other.index)
    result = paired(ours[seeds].to_numpy(), other[seeds].to_numpy(), higher, tie)
    p = "—" if not np.isfinite(result.p) else f"{result.p:.3f}"
    return f"{result.wins}/{result.ties}/{result.losses}, p={p}"


def _table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return lines + [""]


def _per_method(rows: pd.DataFrame, cells: Callable[[str, pd.DataFrame], list[str]]):
    return [[name, *cells(name, group)] for name, group in rows.groupby("method", sort=False)]


def problem_tables(rows: pd.DataFrame) -> list[str]:
    """The tables of one problem's rows of ``results.csv``."""
    hv_tie, regret_tie = TIES["hv_fraction"], TIES["regret"]
    lines = [
        "**Front quality** (verified rows, on the truth). hv_fraction: higher is better; "
        f"ours W/T/L and p on hv_fraction (tie: |difference| <= {hv_tie}). The iso-accuracy "
        "speed-ups are of the one configuration deployed at iso-accuracy.",
        "",
    ]

    def quality(name: str, group: pd.DataFrame) -> list[str]:
        unverified = group["unverified"].sum()
        flagged = f" ({unverified} unverified)" if unverified else ""
        return [
            _cell(group["hv_fraction"], 3),
            _versus(rows, name, "hv_fraction", True, hv_tie),
            _cell(group["igd_plus"], 4),
            _cell(group["avg_speedup_iso"], 2),
            _cell(group["worst_speedup_iso"], 2),
            f"{group['reported'].mean():.1f}{flagged}",
            _cell(group["measurements"], 0),
            _cell(group["accuracy_evaluations"], 0),
            _cell(group["wall_s"], 1),
        ]

    lines += _table(
        [
            "row",
            "hv_fraction",
            "ours W/T/L, p",
            "igd_plus",
            "avg × iso",
            "worst × iso",
            "reported",
            "measurements",
            "accuracy evals",
            "wall s",
        ],
        _per_method(rows, quality),
    )
    for kind, title in (("worst", "Worst-cluster"), ("avg", "Fleet-average")):
        lines += [
            f"**{title} deployment regret** at each accuracy floor below the baseline: true "
            f"{title.lower()} ms of the configuration deployed there (lowest reported "
            "worst-cluster ms among the verified rows that meet the floor) over the "
            "reference's best; 1.0 is perfect, lower is better. Cell: mean ± 95 % CI; "
            f"ours W/T/L (tie: |difference| <= {regret_tie}), p.",
            "",
        ]

        def regret_cells(name: str, group: pd.DataFrame, kind=kind) -> list[str]:
            cells = []
            for drop in DROPS:
                column = f"{kind}_regret_{drop_label(drop)}"
                cells.append(
                    f"{_cell(group[column], 3)}; {_versus(rows, name, column, False, regret_tie)}"
                )
            return cells

        lines += _table(
            ["row", *(f"−{drop_label(d)}" for d in DROPS)], _per_method(rows, regret_cells)
        )
    lines += [
        f"**Anytime:** latency measurements until the worst-cluster regret first drops below "
        f"{THRESHOLD} (median over the seeds that got there; how many did).",
        "",
    ]

    def anytime(name: str, group: pd.DataFrame) -> list[str]:
        cells = []
        for drop in DROPS:
            values = group[f"to_1.05_{drop_label(drop)}"].to_numpy(dtype=float)
            reached = values[np.isfinite(values)]
            median = f"{np.median(reached):.0f}" if len(reached) else "never"
            cells.append(f"{median} ({len(reached)}/{len(values)})")
        return cells

    measured = rows[rows["measurements"].notna()]
    lines += _table(["row", *(f"−{drop_label(d)}" for d in DROPS)], _per_method(measured, anytime))
    return lines


def _span(values: pd.Series, digits: int) -> str:
    """``min..max`` of a column over seeds (one value when they agree)."""
    low, high = values.min(), values.max()
    return (
        f"{low:.{digits}f}"
        if round(low, digits) == round(high, digits)
        else (f"{low:.{digits}f}..{high:.{digits}f}")
    )


def diagnostics_lines(rows: pd.DataFrame) -> list[str]:
    """The fleet diagnostics of one problem over its seeds (one row per seed of
    ``diagnostics.csv``; see :mod:`benchmarks.compare.diagnostics`)."""
    n = len(rows)
    tests = int((rows["kind"] == "test").sum())
    kind = (
        "fleet-awareness **test**"
        if tests == n
        else ("**control**" if tests == 0 else f"test in {tests} of {n} seeds, control in the rest")
    )
    lines = [
        f"**Fleet diagnostics** ({kind}: a test where `oracle_nominal` leaves >= 5 % "
        "worst-cluster regret at some floor). Ranges over the seeds; nominal device: "
        + ", ".join(sorted(set(rows["nominal"])))
        + ".",
        "",
    ]
    header = [
        "clusters",
        "Spearman vs nominal",
        "log-linear R^2",
        "worst-cluster changes / front points",
        "clusters ever worst",
        "oracle_nominal HV",
        *(f"oracle_nominal worst regret −{drop_label(d)}" for d in DROPS),
    ]
    cells = [
        _span(rows["clusters"], 0),
        f"{rows['spearman_min'].min():.3f}..{rows['spearman_max'].max():.3f}",
        f"{rows['r2_min'].min():.3f}..{rows['r2_max'].max():.3f}",
        f"{_span(rows['worst_changes'], 0)} / {_span(rows['front_size'], 0)}",
        _span(rows["worst_clusters"], 0),
        _span(rows["nominal_hv_fraction"], 3),
        *(_span(rows[f"nominal_worst_regret_{drop_label(d)}"], 3) for d in DROPS),
    ]
    return lines + _table(header, [cells])


def markdown(
    results: pd.DataFrame, info: dict[str, dict], diagnostics: pd.DataFrame | None = None
) -> str:
    """Every problem's section: what it is, its diagnostics, then its tables."""
    lines = []
    for problem, rows in results.groupby("problem", sort=False):
        about = info[problem]
        lines += [
            f"### {problem}",
            "",
            f"- Accuracy: {about['accuracy']}.",
            f"- Budgets (every method): {about['budgets']}.",
            f"- Reference front: {about['reference']}.",
            f"- Seeds: {about['seeds']}.",
            "",
        ]
        if diagnostics is not None and problem in set(diagnostics["problem"]):
            lines += diagnostics_lines(diagnostics[diagnostics["problem"] == problem])
        lines += problem_tables(rows)
    return "\n".join(lines)
