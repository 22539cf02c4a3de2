"""Least-squares fit of Y = A·N^(−α)·T^(−β) + D with bootstrap intervals."""
import itertools

import numpy as np
from scipy import optimize

from vlm_jax.scaling.law import Fit, law_error

_ALPHA_BETA_STARTS = (0.01, 0.1, 0.5)
RESAMPLING = ("residuals", "points")


class UndeterminedLawError(ValueError):
  """The points leave the law's exponents free (Y the same at every point)."""


def _residuals(params, n, t, y):
  return law_error(params, n, t) - y


def _jacobian(params, n, t, y):
  a, alpha, beta, _ = params
  power = np.power(n, -alpha) * np.power(t, -beta)
  return np.stack([power, -a * np.log(n) * power, -a * np.log(t) * power,
                   np.ones_like(y)], axis=-1)


def _starts(y):
  """Starting (A, α, β, D): D at 0 or half the smallest error, A from the spread."""
  spread = max(float(np.ptp(y)), 1e-3)
  d_starts = (0.0, 0.5 * float(np.min(y)))
  a_starts = (spread, float(np.max(y)))
  return [np.array(p) for p in itertools.product(
      a_starts, _ALPHA_BETA_STARTS, _ALPHA_BETA_STARTS, d_starts)]


def _least_squares(n, t, y, starts):
  """Best (lowest cost) bounded fit over the starting points: params [4]."""
  best = None
  for start in starts:
    result = optimize.least_squares(
        _residuals, start, jac=_jacobian, args=(n, t, y),
        bounds=(np.zeros(4), np.full(4, np.inf)), x_scale="jac")
    if best is None or result.cost < best.cost:
      best = result
  return best.x


def fit_scaling_law(points, text_tokens=0.0, include_text_in_tokens=False,
                    bootstrap=200, seed=0, confidence=0.95, resample="residuals"):
  """Fits the law to ScalingPoints; T = V, or Q + V with `include_text_in_tokens`.

  The bootstrap refits `bootstrap` resampled data sets, each from the full-data optimum
  (the standard starts as well cost 4x the time for the same intervals on the study's
  grids), and reports percentile intervals at `confidence`. resample: `residuals` keeps
  the measured (N, V) grid and adds the fit's residuals, drawn with replacement, to its
  predictions (the bootstrap for a design the experimenter fixed); `points` draws the
  points themselves with replacement, which on a small grid often leaves out a whole LLM
  size or budget, so the law's exponents are not identified in that sample.
  """
  if len(points) < 4:
    raise ValueError(f"fitting 4 parameters needs at least 4 points, got {len(points)}")
  if resample not in RESAMPLING:
    raise ValueError(f"resample must be one of {', '.join(RESAMPLING)}, got {resample!r}")
  n = np.asarray(points.llm_params_b, dtype=float)
  t = np.asarray(points.visual_tokens, dtype=float)
  if include_text_in_tokens:
    t = t + text_tokens
  y = np.asarray(points.error, dtype=float)
  if np.ptp(y) == 0:  # A = 0 fits exactly, and then any α and β do
    raise UndeterminedLawError(f"Y is {y[0]:.4g} at every point, so the law's exponents "
                               "are not determined")
  starts = _starts(y)
  params = _least_squares(n, t, y, starts)
  predicted = law_error(params, n, t)
  rmse = float(np.sqrt(np.mean((predicted - y) ** 2)))

  intervals = {}
  if bootstrap:
    rng = np.random.default_rng(seed)
    samples = np.empty((bootstrap, 4))
    for i in range(bootstrap):
      if resample == "residuals":
        sample = (n, t, predicted + rng.choice(y - predicted, len(y)))
      else:
        pick = rng.integers(0, len(y), len(y))
        sample = (n[pick], t[pick], y[pick])
      samples[i] = _least_squares(*sample, [params])
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(samples, [tail, 100.0 - tail], axis=0)
    intervals = {f"{name}_ci": (float(lo), float(hi)) for name, lo, hi in
                 zip(("A", "alpha", "beta", "D"), low, high)}
  return Fit(*map(float, params), rmse=rmse, n_points=len(y),
             text_tokens=float(text_tokens),
             tokens_include_text=include_text_in_tokens,
             confidence=confidence, bootstrap=bootstrap, resample=resample if bootstrap else "",
             **intervals)
