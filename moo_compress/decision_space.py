"""What a search needs of a decision space: integer vectors, their bounds and configurations.

:class:`DecisionSpace` is the contract between a :class:`~moo_compress.problem.FleetProblem`
and everything that handles its decision vectors (the search, the store, devices, Dask
workers). Two spaces satisfy it: :class:`~moo_compress.search_space.SearchSpace` (pruning
ratios and bit-widths of a model) and :class:`~moo_compress.nb201.NB201Space` (one op per
NAS-Bench-201 edge). A decision vector ``x`` is ``(n_var,)`` integers with
``xl <= x <= xu``; a population ``X`` is ``(N, n_var)``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Configuration(Protocol):
    """One decoded decision vector: what a device runs and the store keys by.

    Attributes:
        bits: Bit-width of each quantisable layer by name (32 = float32); empty where
            the configuration has no per-layer precision.
    """

    @property
    def bits(self) -> dict[str, int]: ...

    def to_json(self) -> str:
        """Canonical JSON text: equal configurations give equal text."""
        ...


@runtime_checkable
class DecisionSpace(Protocol):
    """An integer decision space whose points decode to :class:`Configuration` objects.

    Attributes:
        n_var: Decision variables.
        xl, xu: (n_var,) int inclusive lower and upper bounds.
        var_names: (n_var,) names of the variables.
        bit_widths: Every bit-width a configuration of the space may use (32 = float32);
            a device bound to the space must run all of them.
        config_type: The configuration class; its ``from_json(text)`` parses what
            :meth:`Configuration.to_json` wrote (a worker parses requests with it).
    """

    @property
    def n_var(self) -> int: ...

    @property
    def xl(self) -> np.ndarray: ...

    @property
    def xu(self) -> np.ndarray: ...

    @property
    def var_names(self) -> list[str]: ...

    @property
    def bit_widths(self) -> tuple[int, ...]: ...

    @property
    def config_type(self) -> type: ...

    def check(self, X: np.ndarray) -> np.ndarray:
        """(N, n_var) int copy of a population (or one vector), validated.

        Raises:
            ValueError: naming the first variable out of its bounds, or a wrong shape.
        """
        ...

    def decode(self, x: np.ndarray) -> Configuration:
        """The configuration of one (n_var,) decision vector."""
        ...

    def encode(self, config: Configuration) -> np.ndarray:
        """(n_var,) int decision vector of ``config``; inverse of :meth:`decode`.

        Raises:
            ValueError: if ``config`` is not a point of this space.
        """
        ...

    def fingerprint(self) -> str:
        """Text that changes whenever the meaning of a decision vector changes, so that a
        store written for another space is refused."""
        ...

    def describe(self) -> str:
        """One-paragraph human summary."""
        ...
