"""The optional short fine-tune of the final front (``--finetune-steps N``).

Every front row and reference row is fine-tuned for ``steps`` steps on the evaluator's
training data (see :meth:`~moo_compress.accuracy.AccuracyEvaluator.fine_tuned`) and
scored again. The reported front stays the search's measured front: dominance is decided
by the accuracy measured before fine-tuning, the value the search compared every
candidate by; the fine-tuned value is reported beside it. The runner fine-tunes after
the search and before it writes the outputs (:func:`fine_tune_result`); the report only
adds the columns (:func:`add_finetune_columns`). Results go through the
:class:`~moo_compress.store.MeasurementStore` (kind ``accuracy_finetuned``, the steps and
learning rate in ``device_id``), so a resumed run does not fine-tune anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from moo_compress.problem import FleetProblem
from moo_compress.search_result import SearchResult
from moo_compress.session import ACCURACY_DEVICE
from moo_compress.store import MeasurementStore

FINETUNED_KIND = "accuracy_finetuned"


@dataclass(frozen=True)
class FinetuneScores:
    """Accuracy (or fidelity) in [0, 1] after a ``steps``-step fine-tune.

    Attributes:
        front: (F,) of the search result's front rows.
        references: (R,) of its reference rows.
    """

    steps: int
    front: np.ndarray
    references: np.ndarray


def finetune_device(steps: int, lr: float) -> str:
    """Store ``device_id`` of fine-tuned scores: one per (steps, learning rate)."""
    return f"{ACCURACY_DEVICE}:finetune-{steps}-lr{lr:g}"


def fine_tuned_scores(
    problem: FleetProblem, store: MeasurementStore, X: np.ndarray, steps: int
) -> np.ndarray:
    """(N,) accuracy (or fidelity) in [0, 1] of each row of (N, n_var) ``X`` after a
    ``steps``-step fine-tune; read from ``store`` where it is there, else computed and
    stored."""
    evaluator = problem.evaluator
    device = finetune_device(steps, evaluator.finetune_lr)
    scores = []
    for x in X:
        config = problem.space.decode(x)
        record = store.get_or_measure(
            device,
            -1,
            config.to_json(),
            FINETUNED_KIND,
            lambda c=config: [evaluator.fine_tuned(c, steps)],
        )
        scores.append(record.median)
    return np.array(scores)


def fine_tune_result(
    problem: FleetProblem, store: MeasurementStore, result: SearchResult, steps: int
) -> FinetuneScores:
    """Fine-tune every front row, then every reference row, of ``result`` (see
    :func:`fine_tuned_scores`)."""
    return FinetuneScores(
        steps,
        fine_tuned_scores(problem, store, result.front.X, steps),
        fine_tuned_scores(problem, store, result.reference_rows.X, steps),
    )


def add_finetune_columns(frame: pd.DataFrame, label: str, after: np.ndarray) -> None:
    """Insert ``<label>_before_finetune`` (a copy of ``frame[label]``) and
    ``<label>_after_finetune`` (``after``, (N,)) right after the ``label`` column."""
    at = frame.columns.get_loc(label) + 1
    frame.insert(at, f"{label}_before_finetune", frame[label])
    frame.insert(at + 1, f"{label}_after_finetune", after)
