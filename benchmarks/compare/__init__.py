"""Comparison of fleet compression methods under protocol v2: shared problems,
budgets and paired seeds.

Run ``python -m benchmarks.compare --help``. The parts, one per module:

* :mod:`.task`: one problem at one seed, with its ground truth, its accuracy cache, the
  budgets and the devices methods may measure on;
* :mod:`.protocol`: the rules every method runs under (budgets, at most M reported
  rows, verification from its own measurements, pinned threads);
* :mod:`.meter`: counts, logs and limits the real latency measurements a method spends;
* :mod:`.reference`: the fixed, cached reference front of a problem and the
  ``oracle_macs`` / ``oracle_nominal`` floors;
* :mod:`.metrics`: hypervolume fraction, IGD+ and iso-accuracy speed-ups on the truth;
* :mod:`.regret`: deployment regret at accuracy floors; :mod:`.anytime`: measurements
  until it is below 1.05;
* :mod:`.stats`: paired statistics against ``ours``; :mod:`.tables`: the markdown;
* :mod:`.methods`: one module per method;
* :mod:`.__main__`: the command line, ``results.csv`` and ``table.md``.
"""
