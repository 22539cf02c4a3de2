"""Y against inference FLOPs like the paper's Figure 1: measured points per LLM size,
the law fitted to them, and the law's frontier; and the fit's one-line description."""
import dataclasses
import math
import os

import numpy as np
from matplotlib import cm, ticker
from matplotlib.figure import Figure

from vlm_jax.scaling.cost import paper_inference_flops
from vlm_jax.scaling.frontier import frontier, optimal_visual_tokens
from vlm_jax.scaling.io import ScalingPoints
from vlm_jax.scaling.law import Fit

ERROR_LABEL = "error (1 − accuracy)"
_FRONTIER_BUDGETS = 50


@dataclasses.dataclass(frozen=True)
class Panel:
  """One axes: measured points, the law fitted to them, and what their Y is."""
  points: ScalingPoints
  fit: Fit
  ylabel: str = ERROR_LABEL


def plot_frontier(points, fit, path, text_tokens=0.0, cost_fn=paper_inference_flops):
  """Writes a PNG like the paper's Figure 1 to `path` and returns the path."""
  return plot_panels([Panel(points, fit)], path, text_tokens, cost_fn=cost_fn)


def plot_panels(panels, path, text_tokens=0.0, *, labels=None, title=None, v_max=None,
                cost_fn=paper_inference_flops):
  """Writes the panels side by side as a PNG to `path` and returns the path.

  labels: {N in billions: legend name} (default 'N = 29.1k'); title: above the
  panels; v_max: the most visual tokens the frontier may use (default: no limit).
  """
  figure = Figure(figsize=(6.5 * len(panels), 4.8), layout="constrained")
  for i, panel in enumerate(panels):
    _draw(figure.add_subplot(1, len(panels), i + 1), panel, text_tokens, labels or {}, v_max,
          cost_fn)
  if title:
    figure.suptitle(title)
  directory = os.path.dirname(os.fspath(path))
  if directory:
    os.makedirs(directory, exist_ok=True)
  figure.savefig(path, dpi=120)
  return path


def _draw(axes, panel, text_tokens, labels, v_max, cost_fn):
  """One panel: each size's measured points joined across V with its law as a dotted
  line, the law's frontier dashed; log FLOPs on x."""
  points, fit = panel.points, panel.fit
  n_values = np.unique(points.llm_params_b)
  colors = cm.viridis(np.linspace(0.0, 0.9, len(n_values)))
  v_range = (points.visual_tokens.min(), points.visual_tokens.max())
  for n, color in zip(n_values, colors):
    _draw_size(axes, points, fit, n, v_range, text_tokens, cost_fn, color,
               labels.get(n, f"N = {format_params(n)}"))
  axes.plot([], [], ":", color="grey", label="the law per size")
  costs = cost_fn(points.llm_params_b, points.visual_tokens, text_tokens)
  _draw_frontier(axes, fit, (costs.min(), costs.max()), (n_values[0], n_values[-1]),
                 text_tokens, v_max, cost_fn)
  _log_flops_axis(axes, costs.min(), costs.max())
  axes.set_xlabel(f"inference FLOPs per query, 2·N·(Q + V), Q = {text_tokens:.3g}")
  axes.set_ylabel(panel.ylabel)
  axes.set_title(f"{describe_exponents(fit)}\n{describe_v_star(fit, text_tokens)}",
                 fontsize="medium")
  axes.grid(True, which="major", alpha=0.3)
  axes.legend(fontsize="small")


def _draw_size(axes, points, fit, n, v_range, text_tokens, cost_fn, color, label):
  """One LLM size: its points in order of V joined by a line; the law along V dotted."""
  mine = points.llm_params_b == n
  order = np.argsort(points.visual_tokens[mine])
  v, y = points.visual_tokens[mine][order], points.error[mine][order]
  axes.plot(cost_fn(n, v, text_tokens), y, "o-", color=color, label=label, zorder=3)
  v = np.geomspace(*v_range, 100)
  axes.plot(cost_fn(n, v, text_tokens), fit.predict_error(n, v, text_tokens), ":",
            color=color, linewidth=1)


def _draw_frontier(axes, fit, cost_range, n_range, text_tokens, v_max, cost_fn):
  """The law's lowest Y per budget over the measured costs, N continuous in n_range."""
  budgets = np.geomspace(*cost_range, _FRONTIER_BUDGETS)
  best = [p for p in frontier(fit, budgets, text_tokens, cost_fn=cost_fn,
                              llm_params_range=n_range, v_max=v_max) if p is not None]
  axes.plot([p.budget_flops for p in best], [p.error for p in best], "k--",
            label="the law's frontier")


def _log_flops_axis(axes, low, high):
  """x on a log scale with few ticks in engineering notation ('2 M', '500 G'): at 1, 2
  and 5 × 10^k over two decades or less, else at powers of ten (strided beyond seven)."""
  subs = (1.0, 2.0, 5.0) if math.log10(high / low) <= 2 else (1.0,)
  axes.set_xscale("log")
  axis = axes.xaxis
  axis.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=7))
  axis.set_major_formatter(ticker.EngFormatter())
  axis.set_minor_formatter(ticker.NullFormatter())


def describe_fit(fit, text_tokens):
  """'α = 0.3 [0.28, 0.32], β = 0.1 [0.09, 0.11]; V* = 11.5 at Q = 23'."""
  return f"{describe_exponents(fit)}; {describe_v_star(fit, text_tokens)}"


def describe_exponents(fit):
  """'α = 0.3 [0.28, 0.32], β = 0.1 [0.09, 0.11]' (intervals where the fit was
  bootstrapped), after 'T = Q + V: ' where the law's T counts the text."""
  tokens = "T = Q + V: " if fit.tokens_include_text else ""
  return (f"{tokens}{_equation('α', fit.alpha, fit.alpha_ci)}, "
          f"{_equation('β', fit.beta, fit.beta_ci)}")


def _equation(symbol, value, interval):
  """'α = 0.3 [0.28, 0.32]', or 'β ≈ 0 [≈ 0, 0.02]'."""
  estimate = format_estimate(value, interval)
  return f"{symbol} {estimate}" if estimate.startswith("≈") else f"{symbol} = {estimate}"


def describe_v_star(fit, text_tokens):
  """The closed-form optimal V at Q text tokens, or why there is none."""
  v_star = optimal_visual_tokens(fit, text_tokens)
  if math.isinf(v_star):
    return "no finite V* (α ≤ β: tokens pay at least as well as parameters)"
  return f"V* = {v_star:.3g} at Q = {text_tokens:.3g}"


# The bounded fit leaves an exponent or offset that the data do not support at 0, to the
# solver's tolerance (1e-18 to 1e-5); below this it reads as "≈ 0" (V^-0.0001 moves Y by
# under 0.1 % for V up to 10,000).
AT_ZERO = 1e-4


def format_number(value, at_zero=AT_ZERO):
  """0.3 -> '0.3', 1.2e-18 -> '≈ 0' (below `at_zero`; 0 shows every value)."""
  return "≈ 0" if abs(value) < at_zero else f"{value:.3g}"


def format_estimate(value, interval=None, at_zero=AT_ZERO):
  """'0.3 [0.28, 0.32]', or '0.3' without an interval."""
  if interval is None:
    return format_number(value, at_zero)
  return f"{format_number(value, at_zero)} {format_interval(interval, at_zero)}"


def format_interval(interval, at_zero=AT_ZERO):
  """'[0.28, 0.32]', or '–' for no interval."""
  if interval is None:
    return "–"
  return f"[{format_number(interval[0], at_zero)}, {format_number(interval[1], at_zero)}]"


def format_params(billions):
  """0.5 -> '500M', 5.1e-05 -> '51k'."""
  for scale, unit in ((1, "B"), (1e-3, "M"), (1e-6, "k")):
    if billions >= scale:
      return f"{billions / scale:.3g}{unit}"
  return f"{billions * 1e9:.3g}"
