"""The search space: an integer decision vector over pruning ratios and bit-widths.

A decision vector ``x`` (length ``n_var``) is laid out as::

    x = [ ratio index of prune gene 0, ..., ratio index of prune gene P-1,
          bit index of bit gene 0,     ..., bit index of bit gene B-1 ]

with ``xl = 0`` and ``xu = len(grid) - 1`` per variable. A *prune gene* sets the pruning
ratio of one or more prunable units (dependency groups); a *bit gene* sets the
bit-width of one or more quantisable layers. Ratio index 0 is ratio 0 (unpruned).

A unit of ``C`` output channels pruned at ratio ``r`` keeps
``min(C, ceil(C * (1 - r) / m) * m)`` channels, ``m`` being ``channel_multiple``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from moo_compress.config import CompressionConfig
from moo_compress.costs import Costs, evaluate_costs
from moo_compress.dependency import build_graph, find_units
from moo_compress.layer_table import LayerTable

DEFAULT_RATIOS = tuple(round(0.1 * i, 1) for i in range(9))
"""Pruning ratios 0.0, 0.1, ..., 0.8."""

GRANULARITIES = ("layer", "block")
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class Gene:
    """One decision variable.

    Attributes:
        name: Block name, or root/layer name at layer granularity.
        members: Indices of the units (prune gene) or quantisable layers (bit gene)
            that it sets.
    """

    name: str
    members: tuple[int, ...]


class SearchSpace:
    """Pruning ratios per prunable unit and bit-widths per quantisable layer of one model;
    a :class:`~moo_compress.decision_space.DecisionSpace`.

    Build it with :meth:`from_model`. The space is vectorised: :meth:`costs` takes a
    whole (N, n_var) population.
    """

    config_type = CompressionConfig
    """What :meth:`decode` returns; its ``from_json`` parses a configuration sent to a
    device."""

    def __init__(
        self,
        model: nn.Module,
        example_input: torch.Tensor,
        table: LayerTable,
        prune_genes: Sequence[Gene],
        bit_genes: Sequence[Gene],
        ratios: Sequence[float],
        bit_widths: Sequence[int],
        channel_multiple: int,
        fixed_bits: dict[str, int],
    ) -> None:
        self.model = model
        self.example_input = example_input
        self.table = table
        self.prune_genes = tuple(prune_genes)
        self.bit_genes = tuple(bit_genes)
        self.ratios = tuple(float(r) for r in ratios)
        self.bit_widths = tuple(int(b) for b in bit_widths)
        self.channel_multiple = channel_multiple
        self.fixed_bits = dict(fixed_bits)
        self.layer_names = tuple(
            n for n, q in zip(table.names, table.quantizable, strict=True) if q
        )
        units = table.units
        # (U, n_ratios) kept channels of each unit at each ratio index.
        self._keep_lut = np.array(
            [[_kept(u.channels, r, channel_multiple) for r in self.ratios] for u in units]
        )
        self._unit_gene = np.full(len(units), -1)
        for g, gene in enumerate(self.prune_genes):
            self._unit_gene[list(gene.members)] = g
        self._layer_gene = np.full(len(self.layer_names), -1)
        for g, gene in enumerate(self.bit_genes):
            self._layer_gene[list(gene.members)] = g
        self._fixed_bits = np.array([fixed_bits.get(n, 0) for n in self.layer_names])

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        example_input: torch.Tensor,
        *,
        granularity: str = "layer",
        bits_granularity: str = "layer",
        ratios: Sequence[float] = DEFAULT_RATIOS,
        bit_widths: Sequence[int] = (8, 16, 32),
        channel_multiple: int = 8,
        protected: Sequence[str] | None = None,
        prune_cross_block: bool = True,
        block_of: Callable[[str], str] | None = None,
    ) -> SearchSpace:
        """Extract the search space of ``model``.

        Args:
            model: A CNN (torchvision-style). It is not modified.
            example_input: One input batch, e.g. ``torch.randn(1, 3, 224, 224)``.
            granularity: ``"layer"``: one prune gene per prunable unit; ``"block"``: one
                per block (e.g. 16 for ResNet50's bottlenecks), units coupled across
                blocks (residual streams) getting a gene of their own.
            bits_granularity: ``"layer"`` or ``"block"``, likewise for bit genes.
            ratios: Pruning-ratio grid, each in [0, 1), the first one 0.
            bit_widths: Bit-widths the target device supports (32 = float32,
                16 = float16, <= 8 integer), e.g. (2, 4, 8) for an MCU.
            channel_multiple: Kept channel counts are rounded up to this multiple.
            protected: Layers neither pruned nor given a bit gene (they run at the
                largest bit-width). Default: the first Conv2d and the last Linear.
            prune_cross_block: At block granularity, whether units coupled across
                blocks get a gene (True) or stay unpruned (False, as HDAP does).
            block_of: Maps a layer name to its block name. Default: the outermost
                enclosing module that is not a plain container, or the layer itself.

        Raises:
            ValueError: for an option of the wrong type or value, or an untraceable
                model, naming the option and what is allowed.
        """
        _check_options(granularity, bits_granularity, ratios, bit_widths, channel_multiple)
        quantizable = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        if not quantizable:
            raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to compress")
        if protected is None:
            protected = _default_protected(model)
        unknown = sorted(set(protected) - set(quantizable))
        if unknown:
            raise ValueError(
                f"protected layer(s) {unknown} are not Conv2d/Linear layers of the model; "
                f"allowed: {quantizable[:3]}... ({len(quantizable)} layers)"
            )
        was_training = model.training
        graph = build_graph(model.eval(), example_input)
        units = find_units(model, graph, protected)
        table = LayerTable.trace(model, example_input, units)
        model.train(was_training)

        block_of = block_of or _block_namer(model)
        prune_genes = _group(
            [
                (_unit_gene_name(u.root, u.members, block_of, granularity), i)
                for i, u in enumerate(units)
                if granularity == "layer"
                or prune_cross_block
                or len({block_of(m) for m in u.members}) == 1
            ]
        )
        layer_names = [n for n, q in zip(table.names, table.quantizable, strict=True) if q]
        bit_genes = _group(
            [
                (block_of(n) if bits_granularity == "block" else n, i)
                for i, n in enumerate(layer_names)
                if n not in protected
            ]
        )
        fixed = {n: max(bit_widths) for n in protected}
        return cls(
            model,
            example_input,
            table,
            prune_genes,
            bit_genes,
            ratios,
            bit_widths,
            channel_multiple,
            fixed,
        )

    # ------------------------------------------------------------------ bounds
    @property
    def n_var(self) -> int:
        return len(self.prune_genes) + len(self.bit_genes)

    @property
    def xl(self) -> np.ndarray:
        """(n_var,) inclusive lower bounds (all 0)."""
        return np.zeros(self.n_var, dtype=int)

    @property
    def xu(self) -> np.ndarray:
        """(n_var,) inclusive upper bounds: last ratio index, then last bit index."""
        return np.array(
            [len(self.ratios) - 1] * len(self.prune_genes)
            + [len(self.bit_widths) - 1] * len(self.bit_genes)
        )

    @property
    def var_names(self) -> list[str]:
        return [f"prune:{g.name}" for g in self.prune_genes] + [
            f"bits:{g.name}" for g in self.bit_genes
        ]

    def unpruned(self, bits: int | None = None) -> np.ndarray:
        """(n_var,) the unpruned model at ``bits`` (default: the largest bit-width)."""
        x = self.xl.copy()
        x[len(self.prune_genes) :] = self.bit_widths.index(bits or max(self.bit_widths))
        return x

    # ------------------------------------------------------------------ vectorised maps
    def check(self, X: np.ndarray) -> np.ndarray:
        """Return ``X`` as an (N, n_var) int array, or raise ``ValueError``.

        The message names the first offending variable and its allowed range.
        """
        X = np.asarray(X)
        if X.dtype.kind not in "biuf":
            raise ValueError(f"decision vector must hold integer indices, got dtype {X.dtype}")
        X2 = np.atleast_2d(X)
        if X2.ndim != 2 or X2.shape[1] != self.n_var:
            raise ValueError(
                f"decision vector has length {X2.shape[-1]}, expected {self.n_var} "
                f"({len(self.prune_genes)} prune genes + {len(self.bit_genes)} bit genes)"
            )
        if not np.all(np.isfinite(X2)) or not np.all(np.round(X2) == X2):
            raise ValueError("decision vector must hold integer indices")
        bad = (self.xl > X2) | (self.xu < X2)  # before the cast: 1e300 has no int64
        if bad.any():
            row, col = np.argwhere(bad)[0]
            grid = self.ratios if col < len(self.prune_genes) else self.bit_widths
            raise ValueError(
                f"{self.var_names[col]}: index {int(X2[row, col])} out of range; allowed 0.."
                f"{len(grid) - 1} for values {list(grid)}"
            )
        return X2.astype(int)

    def keep_matrix(self, X: np.ndarray) -> np.ndarray:
        """(N, U) kept channels of every unit for a population ``X`` of shape (N, n_var)."""
        X = self.check(X)
        full = np.array([u.channels for u in self.table.units])
        keep = np.broadcast_to(full, (len(X), len(full))).copy()
        pruned = self._unit_gene >= 0
        ratio_idx = X[:, self._unit_gene[pruned]]
        keep[:, pruned] = self._keep_lut[np.flatnonzero(pruned), ratio_idx]
        return keep

    def bits_matrix(self, X: np.ndarray) -> np.ndarray:
        """(N, L) bit-width of every quantisable layer for a population ``X``."""
        X = self.check(X)
        bits = np.broadcast_to(self._fixed_bits, (len(X), len(self._fixed_bits))).copy()
        free = self._layer_gene >= 0
        bit_idx = X[:, len(self.prune_genes) + self._layer_gene[free]]
        bits[:, free] = np.asarray(self.bit_widths)[bit_idx]
        return bits

    def costs(self, X: np.ndarray) -> Costs:
        """Analytic costs (MACs, params, size, BitOps, activations) of a population."""
        return evaluate_costs(self.table, self.keep_matrix(X), self.bits_matrix(X))

    # ------------------------------------------------------------------ configs
    def decode(self, x: np.ndarray) -> CompressionConfig:
        """Turn one decision vector (n_var,) into a :class:`CompressionConfig`."""
        x = self.check(x)
        keep, bits = self.keep_matrix(x)[0], self.bits_matrix(x)[0]
        return CompressionConfig(
            input_shape=tuple(self.example_input.shape),
            channels={u.root: int(k) for u, k in zip(self.table.units, keep, strict=True)},
            bits={n: int(b) for n, b in zip(self.layer_names, bits, strict=True)},
            ratios={
                g.name: self.ratios[i]
                for g, i in zip(self.prune_genes, x[0, : len(self.prune_genes)], strict=True)
            },
        )

    def encode(self, config: CompressionConfig) -> np.ndarray:
        """Inverse of :meth:`decode`: (n_var,) int.

        Raises:
            ValueError: naming the gene or layer whose value is not on the grid, or a
                config that is not of this space.
        """
        x = []
        for gene in self.prune_genes:
            if gene.name not in config.ratios:
                raise ValueError(f"config has no ratio for prune gene {gene.name!r}")
            x.append(_index_of(config.ratios[gene.name], self.ratios, f"ratio of {gene.name!r}"))
        for gene in self.bit_genes:
            values = {config.bits.get(self.layer_names[i]) for i in gene.members}
            if len(values) != 1 or None in values:
                raise ValueError(
                    f"bit gene {gene.name!r}: layers {[self.layer_names[i] for i in gene.members]}"
                    f" need one common bit-width, config has {sorted(map(str, values))}"
                )
            x.append(_index_of(values.pop(), self.bit_widths, f"bits of {gene.name!r}"))
        x = np.array(x, dtype=int)
        if self.decode(x) != config:
            raise ValueError("config is not a point of this search space (channels differ)")
        return x

    def fingerprint(self) -> str:
        """The variable names, the ratio grid and the bit-widths, ``|``-separated."""
        return "|".join([*self.var_names, repr(self.ratios), repr(self.bit_widths)])

    def describe(self) -> str:
        """One-paragraph human summary of the space."""
        return (
            f"{type(self.model).__name__}: {len(self.table.units)} prunable units in "
            f"{len(self.prune_genes)} prune genes (ratios {list(self.ratios)}), "
            f"{len(self.layer_names)} quantisable layers in {len(self.bit_genes)} bit genes "
            f"(bits {list(self.bit_widths)}), channels rounded to multiples of "
            f"{self.channel_multiple}; n_var={self.n_var}"
        )


def _kept(channels: int, ratio: float, multiple: int) -> int:
    return min(channels, int(np.ceil(channels * (1 - ratio) / multiple - 1e-9)) * multiple)


def _index_of(value: float, grid: Sequence[float], what: str) -> int:
    hits = np.flatnonzero(np.isclose(grid, value))
    if len(hits) == 0:
        raise ValueError(f"{what} is {value}; allowed: {list(grid)}")
    return int(hits[0])


def _group(pairs: list[tuple[str, int]]) -> list[Gene]:
    """Merge (gene name, member) pairs into genes, keeping first-seen order."""
    members: dict[str, list[int]] = {}
    for name, member in pairs:
        members.setdefault(name, []).append(member)
    return [Gene(name, tuple(m)) for name, m in members.items()]


def _unit_gene_name(
    root: str, members: Sequence[str], block_of: Callable[[str], str], granularity: str
) -> str:
    if granularity == "layer":
        return root
    blocks = {block_of(m) for m in members}
    return blocks.pop() if len(blocks) == 1 else root


def _block_namer(model: nn.Module) -> Callable[[str], str]:
    modules = dict(model.named_modules())

    def block_of(name: str) -> str:
        parts = name.split(".")
        for depth in range(1, len(parts) + 1):
            prefix = ".".join(parts[:depth])
            if type(modules[prefix]) not in _CONTAINERS:
                return prefix
        return name

    return block_of


def _default_protected(model: nn.Module) -> list[str]:
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    protected = convs[:1] + linears[-1:]
    return protected or convs[-1:]


def _check_options(
    granularity: object,
    bits_granularity: object,
    ratios: object,
    bit_widths: object,
    channel_multiple: object,
) -> None:
    for option, value in (("granularity", granularity), ("bits_granularity", bits_granularity)):
        if value not in GRANULARITIES:
            raise ValueError(f"{option}={value!r} is not allowed; allowed: {list(GRANULARITIES)}")
    if (
        not isinstance(ratios, Sequence)
        or not ratios
        or not all(isinstance(r, (int, float)) and 0 <= r < 1 for r in ratios)
        or ratios[0] != 0
        or list(ratios) != sorted(set(ratios))
    ):
        raise ValueError(
            f"ratios={ratios!r} is not allowed; allowed: increasing numbers in [0, 1) "
            "starting at 0, e.g. (0.0, 0.1, ..., 0.8)"
        )
    if (
        not isinstance(bit_widths, Sequence)
        or not bit_widths
        or not all(isinstance(b, int) and (1 < b <= 8 or b in (16, 32)) for b in bit_widths)
        or list(bit_widths) != sorted(set(bit_widths))
    ):
        raise ValueError(
            f"bit_widths={bit_widths!r} is not allowed; allowed: increasing ints from "
            "2..8, 16 (float16), 32 (float32), e.g. (2, 4, 8) or (8, 16, 32)"
        )
    if (
        not isinstance(channel_multiple, int)
        or isinstance(channel_multiple, bool)
        or channel_multiple < 1
    ):
        raise ValueError(f"channel_multiple={channel_multiple!r} is not allowed; allowed: int >= 1")
