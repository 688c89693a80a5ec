"""Comparison of fleet compression methods on shared problems, budgets and seeds.

Run ``python -m benchmarks.compare --help``. The parts, one per module:

* :mod:`.task`: one problem at one seed, with its ground truth, its accuracy cache and
  the devices methods may measure on;
* :mod:`.meter`: counts the real latency measurements a method spends;
* :mod:`.metrics`: hypervolume fraction, IGD+ and iso-accuracy speed-ups on the truth;
* :mod:`.methods`: one module per method;
* :mod:`.__main__`: the command line, ``results.csv`` and ``table.md``.
"""
