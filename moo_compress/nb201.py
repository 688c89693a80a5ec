"""NAS-Bench-201 cells on recorded data: search space, data tables, accuracy and true front.

A NAS-Bench-201 (NB201) cell has 6 edges, each one of 5 operations (:data:`OPS`), so
there are 5**6 = 15,625 architectures. Here a cell is an integer decision vector ``x``
of shape (6,), gene ``i`` the index in :data:`OPS` of the op on edge :data:`EDGES` [i]
(the edge order of NB201's ``arch_str``). Its *code* ``sum(x[i] * 5**(5 - i))`` in
0..15,624 is the row of every table of :class:`NB201Data`.

The recorded data (CIFAR-10 accuracy, latency on real devices) is not part of the
project: :func:`data_dir` finds it through ``$MOO_COMPRESS_NB201``, else at
``<repo root>/../shared/data/nb201``; its README names the files, devices and known
defects.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from moo_compress.accuracy import AccuracyEvaluator

if TYPE_CHECKING:
    from moo_compress.problem import FleetProblem

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
"""Operations of an edge; a gene is an index into this tuple."""

EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
"""(to, from) nodes of the 6 edges, in ``arch_str`` order."""

N_ARCHS = len(OPS) ** len(EDGES)
"""15,625 architectures."""

ENV_VAR = "MOO_COMPRESS_NB201"
REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES = (
    "HELP (github.com/HayeonLee/HELP), OneProxy (github.com/Ren-Research/OneProxy) and "
    "nas-without-training (github.com/BayesWatch/nas-without-training)"
)
FILES = ("accuracy_cifar10.csv", "latency_help_ms.csv", "latency_oneproxy_ms.csv")

_PLACE = 5 ** np.arange(len(EDGES) - 1, -1, -1)  # (6,) base-5 place value of each gene

# ---------------------------------------------------------------- analytic MACs
CELL_UNIT_MACS = 16 * 16 * 32 * 32
"""C**2 * H * W of one cell: 262,144 in every stage (C=16 at 32 px, 32 at 16 px,
64 at 8 px)."""
CELLS = 15
"""Cells in the CIFAR network: 5 per stage, 3 stages."""
OP_UNIT_MACS = np.array([0, 0, 1, 9, 0])
"""MACs of one edge per op, in units of C**2 * H * W (:data:`OPS` order): a 1x1
convolution 1, a 3x3 convolution 9; none, skip and 3x3 average pooling none."""
FIXED_MACS = (
    9 * 3 * 16 * 32 * 32  # stem: 3x3 conv 3 -> 16 at 32x32
    + sum(
        9 * c * 2 * c * h * h  # reduction block conv_a: 3x3 stride 2, c -> 2c
        + 9 * (2 * c) ** 2 * h * h  # conv_b: 3x3, 2c -> 2c
        + c * 2 * c * h * h  # shortcut: 2x2 avg pool, then 1x1 conv c -> 2c
        for c, h in ((16, 16), (32, 8))  # input channels, output size in px
    )
    + 64 * 10  # classifier
)
"""MACs outside the cells: 7,783,040."""


def macs(X: np.ndarray) -> np.ndarray:
    """(N,) int64 multiply-accumulates of the CIFAR-10 NB201 network of each cell of an
    (N, 6) population, computed here (not read from NB201).

    ``MACs = FIXED_MACS + 15 * C**2*H*W * (9 * n_3x3 + n_1x1)``: each of the 15 cells costs
    ``9 * C**2*H*W`` per ``nor_conv_3x3`` edge and ``C**2*H*W`` per ``nor_conv_1x1`` edge
    (BatchNorm, ReLU, pooling, skip and none are counted as 0), and ``C**2*H*W`` is the
    same in all three stages. Range: 7.78 M (no convolution) to 220.1 M (all 3x3).
    """
    return _macs(OP_UNIT_MACS[np.asarray(X, dtype=np.int64)])


def live_macs(X: np.ndarray) -> np.ndarray:
    """(N,) int64 :func:`macs` counting only the :func:`live_edges` of each cell: what
    is left once a graph compiler drops the edges the output does not depend on."""
    return _macs(OP_UNIT_MACS[np.asarray(X, dtype=np.int64)] * live_edges(X))


def _macs(edge_units: np.ndarray) -> np.ndarray:
    """(N,) int64 MACs of the network from the (N, 6) MACs of each edge, in units of
    :data:`CELL_UNIT_MACS`."""
    return (FIXED_MACS + CELLS * CELL_UNIT_MACS * edge_units.sum(axis=1)).astype(np.int64)


def live_edges(X: np.ndarray) -> np.ndarray:
    """(N, 6) bool: whether each edge of an (N, 6) population is on a path from the cell's
    input (node 0) to its output (node 3) through edges that are not ``none``.

    Any other edge computes nothing the output depends on (its input is all zeros, or
    its result is never used), and a graph compiler may drop it: on some recorded
    devices (raspi4, pixel3) latency follows the live edges, not all edges.
    """
    op = np.asarray(X, dtype=np.int64) != OPS.index("none")  # (N, 6) edge carries data
    n = len(op)
    # node reached from the input, and node that reaches the output, through such edges
    fwd = np.ones((n, 4), dtype=bool)
    back = np.ones((n, 4), dtype=bool)
    for node in (1, 2, 3):
        fwd[:, node] = np.any(
            [op[:, i] & fwd[:, s] for i, (t, s) in enumerate(EDGES) if t == node], axis=0
        )
    for node in (2, 1, 0):
        back[:, node] = np.any(
            [op[:, i] & back[:, t] for i, (t, s) in enumerate(EDGES) if s == node], axis=0
        )
    to, source = np.array(EDGES).T
    return op & fwd[:, source] & back[:, to]


# ---------------------------------------------------------------- cells and strings
def encode_ops(arch_strs: Iterable[str]) -> np.ndarray:
    """(n, 6) int64 op index (position in :data:`OPS`) of each edge of NB201 cell strings."""
    ops = [[OPS.index(op) for op in re.findall(r"([a-z_0-9]+)~\d", s)] for s in arch_strs]
    return np.array(ops, dtype=np.int64).reshape(-1, len(EDGES))


def arch_str(ops: Iterable[str]) -> str:
    """NB201's string of a cell from its 6 op names, e.g. ``|nor_conv_3x3~0|+|...|``."""
    ops = list(ops)
    nodes, i = [], 0
    for node in range(1, 4):
        nodes.append("|" + "|".join(f"{ops[i + j]}~{j}" for j in range(node)) + "|")
        i += node
    return "+".join(nodes)


def codes(X: np.ndarray) -> np.ndarray:
    """(N,) int64 table row (base-5 code) of an (N, 6) population."""
    return np.asarray(X, dtype=np.int64) @ _PLACE


def all_cells() -> np.ndarray:
    """(15625, 6) every decision vector, row ``r`` having code ``r``."""
    return (np.arange(N_ARCHS)[:, None] // _PLACE) % len(OPS)


@dataclass(frozen=True)
class NB201Cell:
    """One NB201 architecture, what a :class:`NB201Space` decodes a vector into.

    Attributes:
        ops: The 6 op names, in :data:`EDGES` order.
    """

    ops: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [op for op in self.ops if op not in OPS]
        if len(self.ops) != len(EDGES) or unknown:
            raise ValueError(
                f"an NB201 cell has {len(EDGES)} ops from {list(OPS)}; got {list(self.ops)}"
            )

    @property
    def arch_str(self) -> str:
        return arch_str(self.ops)

    @property
    def bits(self) -> dict[str, int]:
        """No per-layer bit-widths: every cell runs as recorded (float32)."""
        return {}

    def to_json(self) -> str:
        """Canonical JSON, ``{"arch_str": "|...|"}``."""
        return json.dumps({"arch_str": self.arch_str})

    @classmethod
    def from_json(cls, text: str) -> NB201Cell:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: if ``text`` is not JSON with an ``arch_str`` of 6 known ops.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"NB201 cell is not valid JSON: {exc}") from exc
        if not isinstance(data, dict) or "arch_str" not in data:
            raise ValueError(f"NB201 cell JSON lacks field 'arch_str': {text!r}")
        return cls(tuple(re.findall(r"([a-z_0-9]+)~\d", data["arch_str"])))


class NB201Space:
    """The decision space: 6 integer genes in 0..4, one op per edge; a
    :class:`~moo_compress.decision_space.DecisionSpace`.

    Attributes:
        bit_widths: ``(32,)``: every cell runs in float32, as recorded.
    """

    n_var = len(EDGES)
    bit_widths = (32,)
    config_type = NB201Cell

    @property
    def xl(self) -> np.ndarray:
        return np.zeros(self.n_var, dtype=np.int64)

    @property
    def xu(self) -> np.ndarray:
        return np.full(self.n_var, len(OPS) - 1, dtype=np.int64)

    @property
    def var_names(self) -> list[str]:
        """Edge names, ``edge_1<-0`` ... ``edge_3<-2``."""
        return [f"edge_{to}<-{frm}" for to, frm in EDGES]

    def check(self, X: np.ndarray) -> np.ndarray:
        """(N, 6) int64 copy of a population, validated.

        Raises:
            ValueError: wrong shape, a non-integer value or a gene outside 0..4.
        """
        X = np.atleast_2d(np.asarray(X))
        if X.ndim != 2 or X.shape[1] != self.n_var:
            raise ValueError(f"expected an (N, {self.n_var}) population, got shape {X.shape}")
        if not np.all(np.isfinite(X)) or not np.array_equal(X, np.round(X)):
            raise ValueError("NB201 genes must be integers; allowed: 0..4")
        bad = ~np.isin(X, np.arange(len(OPS)))
        if bad.any():
            row, col = map(int, np.argwhere(bad)[0])
            raise ValueError(
                f"gene {self.var_names[col]!r} = {X[row, col]} is not allowed; allowed: 0..4 "
                f"({', '.join(OPS)})"
            )
        return X.astype(np.int64)

    def decode(self, x: np.ndarray) -> NB201Cell:
        """The cell of one (6,) decision vector."""
        return NB201Cell(tuple(OPS[i] for i in self.check(x)[0]))

    def encode(self, cell: NB201Cell) -> np.ndarray:
        """(6,) int64 decision vector of ``cell``; inverse of :meth:`decode`."""
        return np.array([OPS.index(op) for op in cell.ops], dtype=np.int64)

    def fingerprint(self) -> str:
        """The edge names and the op list, ``|``-separated."""
        return "|".join([*self.var_names, *OPS])

    def describe(self) -> str:
        return (
            f"NB201 cell: {self.n_var} edges x {len(OPS)} ops ({', '.join(OPS)}), "
            f"{N_ARCHS:,} architectures"
        )


# ---------------------------------------------------------------- data
def data_dir(path: str | Path | None = None) -> Path:
    """The NB201 data folder: ``path``, else ``$MOO_COMPRESS_NB201``, else
    ``<repo root>/../shared/data/nb201``. Not checked; see :func:`require_data_dir`."""
    return Path(path or os.environ.get(ENV_VAR) or REPO_ROOT / "../shared/data/nb201")


def require_data_dir(path: str | Path | None = None) -> Path:
    """:func:`data_dir`, checked to hold the data files.

    Raises:
        ValueError: one line naming the folder tried, the variable and the sources.
    """
    folder = data_dir(path)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise ValueError(
            f"NB201 data not found: {folder} lacks {', '.join(missing)}; set {ENV_VAR} to the "
            f"folder holding {', '.join(FILES)} (see its README; the originals come from "
            f"{SOURCES})"
        )
    return folder


@dataclass(frozen=True)
class NB201Data:
    """The recorded tables, one row per architecture in code order (see :func:`codes`).

    Attributes:
        folder: Where the files were read.
        nb201_index: (15625,) NB201's own index of each row.
        accuracy: (15625, 2) ``cifar10_test_acc``, ``cifar10_valid_acc`` in %.
        latency: (15625, D) latency in ms; the columns are the devices of
            ``latency_help_ms.csv`` (every row) and ``latency_oneproxy_ms.csv`` (1,999
            rows, NaN elsewhere). Values are as recorded: ``-1`` means not measured.
    """

    folder: Path
    nb201_index: np.ndarray
    accuracy: pd.DataFrame
    latency: pd.DataFrame

    @classmethod
    def load(cls, path: str | Path | None = None) -> NB201Data:
        """Read the folder (see :func:`require_data_dir`); cached per resolved folder."""
        return _load(require_data_dir(path).resolve())

    def valid_accuracy(self, X: np.ndarray) -> np.ndarray:
        """(N,) CIFAR-10 validation accuracy in [0, 1] of an (N, 6) population."""
        return self.accuracy["cifar10_valid_acc"].to_numpy()[codes(X)] / 100.0

    def test_accuracy(self, X: np.ndarray) -> np.ndarray:
        """(N,) CIFAR-10 test accuracy in [0, 1] of an (N, 6) population."""
        return self.accuracy["cifar10_test_acc"].to_numpy()[codes(X)] / 100.0

    def latency_ms(self, device: str, X: np.ndarray) -> np.ndarray:
        """(N,) recorded latency in ms of an (N, 6) population on ``device``, as recorded
        (``-1`` or NaN where not measured)."""
        if device not in self.latency:
            raise ValueError(f"unknown NB201 device {device!r}; allowed: {list(self.latency)}")
        return self.latency[device].to_numpy()[codes(X)]


@lru_cache(maxsize=4)
def _load(folder: Path) -> NB201Data:
    tables = {f: pd.read_csv(folder / f) for f in FILES}
    for name, table in tables.items():
        table.index = codes(encode_ops(table["arch_str"]))
        if not table.index.is_unique:
            raise ValueError(f"{folder / name}: an architecture appears twice")
    accuracy = tables["accuracy_cifar10.csv"]
    if len(accuracy) != N_ARCHS:
        raise ValueError(f"{folder / 'accuracy_cifar10.csv'} has {len(accuracy)} rows, not 15625")
    rows = pd.RangeIndex(N_ARCHS)
    drop = ["nb201_index", "arch_str"]
    latency = pd.concat([tables[f].drop(columns=drop).reindex(rows) for f in FILES[1:]], axis=1)
    accuracy = accuracy.reindex(rows)
    return NB201Data(
        folder=folder,
        nb201_index=accuracy["nb201_index"].to_numpy(),
        accuracy=accuracy[["cifar10_test_acc", "cifar10_valid_acc"]],
        latency=latency,
    )


class RecordedAccuracy(AccuracyEvaluator):
    """Recorded CIFAR-10 top-1 accuracy of an NB201 cell: the validation accuracy for the
    search (:meth:`evaluate`), the test accuracy for reporting (:meth:`test_accuracy`).

    A table look-up, so every candidate is evaluated (``expensive`` False). There is no
    model, so nothing to fine-tune.
    """

    mode = "real"
    expensive = False

    def __init__(self, data: NB201Data, space: NB201Space) -> None:
        self.data = data
        self.space = space

    def evaluate(self, config: NB201Cell) -> float:
        """Validation accuracy in [0, 1] after 200 epochs."""
        return float(self.data.valid_accuracy(self.space.encode(config)[None])[0])

    def test_accuracy(self, config: NB201Cell) -> float:
        """Test accuracy in [0, 1] after 200 epochs."""
        return float(self.data.test_accuracy(self.space.encode(config)[None])[0])


# ---------------------------------------------------------------- oracle
@dataclass(frozen=True)
class TrueFront:
    """Every architecture's true objectives and the exact Pareto front.

    Attributes:
        X: (15625, 6) every decision vector, in code order.
        F: (15625, 3) [1 - validation accuracy, fleet-average ms, worst-cluster ms] from
            the recorded tables; rows violating a problem constraint are +inf.
        front: (P,) rows of ``X`` / ``F`` that are feasible and non-dominated.
    """

    X: np.ndarray
    F: np.ndarray
    front: np.ndarray

    @property
    def front_F(self) -> np.ndarray:
        """(P, 3) objectives of the front."""
        return self.F[self.front]


def nb201_true_front(problem: FleetProblem) -> TrueFront:
    """Enumerate all 15,625 cells of an NB201 problem: the oracle of comparisons.

    Accuracy is the problem's evaluator (vectorised through its ``data``); latency is
    ``problem.clusters.true_cluster_latency``, i.e. the recorded value of every cluster's
    device, so ``F`` is what :meth:`FleetProblem.objectives` gives for measured values.

    Raises:
        ValueError: if a device lacks a recorded value for some cell.
    """
    X = all_cells()
    accuracy = problem.evaluator.data.valid_accuracy(X)
    latency = problem.clusters.true_cluster_latency(X)
    F = problem.objectives(accuracy, latency)
    feasible = np.all(problem.constraint_values(X, accuracy, latency) <= 0, axis=1)
    F[~feasible] = np.inf
    rows = np.flatnonzero(feasible)
    front = rows[NonDominatedSorting().do(F[rows], only_non_dominated_front=True)]
    return TrueFront(X=X, F=F, front=np.sort(front))
