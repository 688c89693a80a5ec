r"""Artefact readings: latencies orders of magnitude off a device's own distribution.

Recorded and live latency data hold readings that no network could produce on that
device: NAS-Bench-201 cells without a path from input to output were logged on
``raspi4`` at about 0.011 ms against a median of 25.7 ms, and a crashed or skipped run can
report a time of a few microseconds. One such reading in a GP's training data inflates
the fitted noise for every point (issue 13: noise 1.145 standardised, predictions 12x too
high). They are flagged here and kept out of the latency models, as
``moo_compress.dispatch.outliers`` keeps wild repeats out of a live measurement.

The rule works on one device's readings in log space, where a device's latency spread is
a few tenths of a nat and an artefact is several nats away:

- centre ``c = median(log y)`` and robust scale ``s = 1.4826 * MAD(log y)`` (the normal-
  consistent median absolute deviation; both tolerate up to half the readings being bad);
- a reading is an artefact when ``|log y - c| > max(z * s, log(min_factor))``.

``min_factor`` (default 10) keeps a tight device from flagging real configurations: a
reading is never flagged unless it is at least that many times off the median. With the
defaults on the NB201 table, ``raspi4`` (s = 0.63) flags readings under 1.1 ms or over
600 ms, i.e. the 0.011-1 ms cluster of non-functional cells, and no reading of ``eyeriss``,
``fpga``, ``pixel2`` or ``gold_6240``.

Residuals from an analytic prior (``log y - log prior_ms``) are the better input where a
problem has a prior: the prior explains the real spread, so an artefact stands out more.
"""

from __future__ import annotations

import numpy as np

MAD_TO_STD = 1.4826
"""Scale of a normal distribution per unit of median absolute deviation."""


def artefact_mask(
    log_y: np.ndarray, z: float = 5.0, min_factor: float = 10.0, min_points: int = 5
) -> np.ndarray:
    r"""Flag the readings of one device that lie far outside its own log distribution.

    Args:
        log_y: ``(n,)`` log latency (log-ms) of one device, or log residuals from a prior.
        z: Threshold in robust standard deviations, ``> 0``.
        min_factor: A flagged reading is at least this factor off the median, ``> 1``.
        min_points: Fewer readings than this are never flagged (the median and MAD of a
            handful of points say little); ``>= 3``.

    Returns:
        ``(n,)`` bool, ``True`` for an artefact.

    Raises:
        ValueError: ``log_y`` not 1-D or not finite, or invalid thresholds.
    """
    log_y = np.asarray(log_y, dtype=np.float64)
    if log_y.ndim != 1 or not np.isfinite(log_y).all():
        raise ValueError(f"log_y must be a finite 1-D array, got shape {log_y.shape}")
    if z <= 0 or min_factor <= 1 or min_points < 3:
        raise ValueError(
            f"need z > 0, min_factor > 1 and min_points >= 3, got {z}, {min_factor}, {min_points}"
        )
    if log_y.size < min_points:
        return np.zeros(log_y.shape, dtype=bool)
    centre = np.median(log_y)
    scale = MAD_TO_STD * np.median(np.abs(log_y - centre))
    return np.abs(log_y - centre) > max(z * scale, np.log(min_factor))


def artefact_mask_by_group(log_y: np.ndarray, group: np.ndarray, **kwargs: float) -> np.ndarray:
    r"""``artefact_mask`` applied to each group (device cluster) on its own.

    Args:
        log_y: ``(n,)`` log latency or log residual.
        group: ``(n,)`` int group (cluster) of each reading.
        **kwargs: Thresholds of ``artefact_mask``.

    Returns:
        ``(n,)`` bool, ``True`` for an artefact of its group.
    """
    log_y = np.asarray(log_y, dtype=np.float64)
    group = np.asarray(group)
    if group.shape != log_y.shape:
        raise ValueError(f"group must have shape {log_y.shape}, got {group.shape}")
    mask = np.zeros(log_y.shape, dtype=bool)
    for g in np.unique(group):
        idx = group == g
        mask[idx] = artefact_mask(log_y[idx], **kwargs)
    return mask
