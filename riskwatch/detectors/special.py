"""``log_ndtr`` in numpy, for installs without the ``[scipy]`` extra.

Detector scores turn a z-score into the log of a Gaussian tail probability; far in the
tail the probability underflows, so it must be computed as a logarithm from the start.
With scipy installed :func:`scipy.special.log_ndtr` is used; without it this module's
version: the Chebyshev-fitted ``erfc`` of Numerical Recipes (fractional error below
1.2e-7 everywhere), taken in log form so that it never underflows. Whole columns, no loop.

>>> import numpy as np
>>> log_ndtr(np.array([0.0, -3.0, -40.0, 2.0])).round(4).tolist()
[-0.6931, -6.6077, -804.6084, -0.023]
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_ndtr"]

_C = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
      0.09678418, 0.37409196, 1.00002368, -1.26551223)  # fmt: skip
_SQRT1_2 = float(np.sqrt(0.5))
_LN2 = float(np.log(2.0))


def _log_erfc_pos(z: np.ndarray) -> np.ndarray:
    """``log(erfc(z))`` for ``z >= 0``."""
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(z, _C[0])
    for c in _C[1:]:  # ten coefficients, not readings: Horner's scheme over whole columns
        poly *= t
        poly += c
    return np.log(t) - z * z + poly


def log_ndtr(x: np.ndarray) -> np.ndarray:
    """``log(Phi(x))``, the log of the standard normal CDF, elementwise (NaN stays NaN)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x) * _SQRT1_2
    log_tail = _log_erfc_pos(z) - _LN2  # log(Phi(-|x|))
    with np.errstate(invalid="ignore"):
        upper = np.log1p(-np.exp(log_tail))  # log(1 - Phi(-|x|)) = log(Phi(|x|))
    out: np.ndarray = np.where(x <= 0.0, log_tail, upper)
    return out
