"""NAS-Bench-201 cells on a fleet of phones and one phone-class edge board, replayed.

A consumer app ships one network to the phones its users own. Four recorded devices,
each its own cluster of equal weight (see :mod:`moo_compress.nb201_problem`; accuracy is
REAL, the recorded CIFAR-10 validation accuracy):

* ``samsung_a50``, ``samsung_s7``, ``essential_ph_1``: phone CPUs of three vendors and
  generations (recorded by HELP, logged in whole ms: coarse, few distinct values);
* ``pixel3``: a phone CPU recorded by HW-NAS-Bench (some values under 0.1 ms, a known
  defect of the data, kept as recorded).

Nominal device: ``pixel2``, the test phone on the team's desk, not in the fleet.
"""

from __future__ import annotations

from moo_compress.nb201_problem import NB201Problem


class NB201Phones(NB201Problem):
    name = "nb201_phones"
    devices = ("samsung_a50", "samsung_s7", "essential_ph_1", "pixel3")
    nominal = "pixel2"
