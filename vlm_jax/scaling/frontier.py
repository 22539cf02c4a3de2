"""The inference-optimal (N, V) per FLOPs budget: measured, along the fitted law, closed form."""
import dataclasses
import math

import numpy as np
from scipy import optimize

from vlm_jax.scaling.cost import CostFn, paper_inference_flops
from vlm_jax.scaling.law import Fit

_BISECTION_STEPS = 100
_MAX_DOUBLINGS = 1024


@dataclasses.dataclass(frozen=True)
class FrontierPoint:
  """The best configuration for one budget; `error` is predicted (law) or measured."""
  budget_flops: float
  llm_params_b: float
  visual_tokens: float
  error: float
  cost_flops: float

  @property
  def accuracy(self):
    return 1.0 - self.error

  def to_dict(self):
    return {**dataclasses.asdict(self), "accuracy": self.accuracy}


def optimal_visual_tokens(fit, text_tokens, v_min=1.0):
  """Closed-form optimal V under the paper's cost C = 2·N·(Q + V), N and V continuous.

  With T = V, minimizing N^(−α)·V^(−β) along N = C / (2(Q + V)) gives
  V* = Q·β / (α − β) for α > β (at least v_min, so V* = v_min at Q = 0). With
  T = Q + V the error grows with Q + V when α > β, so V* = v_min. Returns
  math.inf when α ≤ β (tokens help at least as much as parameters).
  """
  if fit.alpha <= fit.beta:
    return math.inf
  if fit.tokens_include_text:
    return float(v_min)
  return max(float(v_min), text_tokens * fit.beta / (fit.alpha - fit.beta))


def _largest_affordable(cost_of, low, high, budget):
  """Largest x in [low, high] with cost_of(x) ≤ budget for an increasing cost_of.

  Elementwise over arrays; NaN where even `low` is over budget.
  """
  low, high = np.broadcast_arrays(np.asarray(low, float), np.asarray(high, float))
  lo, hi = low.copy(), high.copy()
  for _ in range(_BISECTION_STEPS):
    mid = 0.5 * (lo + hi)
    fits = cost_of(mid) <= budget
    lo, hi = np.where(fits, mid, lo), np.where(fits, hi, mid)
  largest = np.where(cost_of(high) <= budget, high, lo)
  return np.where(cost_of(low) <= budget, largest, np.nan)


@dataclasses.dataclass(frozen=True)
class _Budgeted:
  """The fitted law with one text length, cost model and range of V."""
  fit: Fit
  text_tokens: float
  cost_fn: CostFn
  v_min: float
  v_max: float | None
  integer_tokens: bool

  def cost(self, n, v):
    return np.asarray(self.cost_fn(n, v, self.text_tokens), dtype=float)

  def error(self, n, v):
    """Predicted error; inf where no configuration is affordable (NaN N or V)."""
    error = self.fit.predict_error(n, v, self.text_tokens)
    return np.where(np.isnan(error), np.inf, error)

  def visual_tokens(self, n, budget):
    """Most V the budget allows beside N params: [len(n)], NaN where v_min is too many."""
    n = np.asarray(n, dtype=float)
    cost_of = lambda v: self.cost(n, v)
    if self.v_max is None:
      high = np.full(n.shape, 2.0 * self.v_min)
      for _ in range(_MAX_DOUBLINGS):
        affordable = cost_of(high) <= budget
        if not affordable.any():
          break
        high = np.where(affordable, 2.0 * high, high)
      else:
        raise ValueError("the cost does not grow with the number of visual tokens")
    else:
      high = self.v_max
    v = _largest_affordable(cost_of, self.v_min, high, budget)
    if not self.integer_tokens:
      return v
    # Bisection can stop a hair below an exactly affordable integer.
    down = np.floor(v)
    one_more = (cost_of(down + 1) <= budget) & (self.v_max is None or down + 1 <= self.v_max)
    return np.where(one_more, down + 1, down)

  def llm_params_b(self, v, low, high, budget):
    """Most N in [low, high] the budget allows beside V tokens; NaN where none."""
    v = np.asarray(v, dtype=float)
    return _largest_affordable(lambda n: self.cost(n, v), low, high, budget)

  def best_of(self, budget, n, v):
    """The candidate (N, V) pair with the lowest predicted error, or None."""
    n, v = np.asarray(n, dtype=float), np.asarray(v, dtype=float)
    errors = self.error(n, v)
    i = int(np.argmin(errors))
    if not np.isfinite(errors[i]):
      return None
    return FrontierPoint(float(budget), float(n[i]), float(v[i]), float(errors[i]),
                         float(self.cost(n[i], v[i])))

  def best_in_range(self, budget, low, high, n_grid):
    """Grid over log N in [low, high], refined by a bounded scalar search."""
    continuous = dataclasses.replace(self, integer_tokens=False)
    high = float(continuous.llm_params_b(self.v_min, low, high, budget))
    if math.isnan(high):
      return None
    error_at = lambda log_n: continuous.error(
        np.exp(log_n), continuous.visual_tokens(np.exp(log_n), budget))
    log_n = np.linspace(math.log(low), math.log(high), n_grid)
    errors = error_at(log_n)
    i = int(np.argmin(errors))
    refined = optimize.minimize_scalar(
        lambda x: float(error_at(np.array([x]))[0]), method="bounded",
        bounds=(log_n[max(i - 1, 0)], log_n[min(i + 1, n_grid - 1)]),
        options={"xatol": 1e-10})
    best_log_n = refined.x if refined.fun < errors[i] else log_n[i]
    n = np.exp([best_log_n])
    v = continuous.visual_tokens(n, budget)
    if not self.integer_tokens:
      return self.best_of(budget, n, v)
    v = np.array([math.floor(v[0]), math.ceil(v[0])], dtype=float)
    return self.best_of(budget, self.llm_params_b(v, low, high, budget), v)


def frontier(fit, budgets_flops, text_tokens=0.0, *, llm_params_b=None,
             llm_params_range=None, n_grid=256, v_min=1.0, v_max=None,
             integer_tokens=False, cost_fn=paper_inference_flops):
  """Lowest predicted-error (N, V) per budget: list [len(budgets)] of FrontierPoint or None.

  N ranges over the candidates `llm_params_b`, or continuously over
  `llm_params_range` = (low, high); for each N, V is the most the budget
  allows (V = C/(2N) − Q under the paper's cost), kept within [v_min, v_max]
  and rounded down with `integer_tokens`. None where nothing is affordable.
  """
  if (llm_params_b is None) == (llm_params_range is None):
    raise ValueError("give exactly one of llm_params_b (candidates) and llm_params_range")
  if integer_tokens:
    v_min = math.ceil(v_min)
    v_max = None if v_max is None else math.floor(v_max)
  if v_min <= 0 or (v_max is not None and v_max < v_min):
    raise ValueError(f"need 0 < v_min <= v_max, got v_min={v_min}, v_max={v_max}")
  budgets = np.atleast_1d(np.asarray(budgets_flops, dtype=float))
  if np.any(budgets <= 0):
    raise ValueError("budgets must be positive FLOPs")
  problem = _Budgeted(fit, float(text_tokens), cost_fn, float(v_min),
                      None if v_max is None else float(v_max), integer_tokens)
  if llm_params_range is not None:
    low, high = map(float, llm_params_range)
    if not 0 < low <= high:
      raise ValueError(f"need 0 < low <= high in llm_params_range, got {llm_params_range}")
    return [problem.best_in_range(b, low, high, n_grid) for b in budgets]
  n = np.asarray(llm_params_b, dtype=float)
  return [problem.best_of(b, n, problem.visual_tokens(n, b)) for b in budgets]


def measured_frontier(points, budgets_flops, text_tokens=0.0, cost_fn=paper_inference_flops):
  """Lowest measured-error configuration within each budget: list of FrontierPoint or None."""
  cost = np.asarray(cost_fn(points.llm_params_b, points.visual_tokens, text_tokens), float)
  best = []
  for budget in np.atleast_1d(np.asarray(budgets_flops, dtype=float)):
    errors = np.where(cost <= budget, points.error, np.inf)
    i = int(np.argmin(errors))
    best.append(None if not np.isfinite(errors[i]) else FrontierPoint(
        float(budget), float(points.llm_params_b[i]), float(points.visual_tokens[i]),
        float(points.error[i]), float(cost[i])))
  return best
