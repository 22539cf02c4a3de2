"""Error against inference FLOPs: measured points, fitted curves per N, the frontier."""
import os

import numpy as np
from matplotlib import cm
from matplotlib.figure import Figure

from vlm_jax.scaling.cost import paper_inference_flops
from vlm_jax.scaling.frontier import frontier


def plot_frontier(points, fit, path, text_tokens=0.0, cost_fn=paper_inference_flops):
  """Writes a PNG like the paper's Figure 1 to `path` and returns the path."""
  n_values = np.unique(points.llm_params_b)
  v_low, v_high = points.visual_tokens.min(), points.visual_tokens.max()
  colors = cm.viridis(np.linspace(0.0, 0.9, len(n_values)))
  figure = Figure(figsize=(7, 4.5))
  axes = figure.add_subplot()
  for n, color in zip(n_values, colors):
    mine = points.llm_params_b == n
    axes.scatter(cost_fn(n, points.visual_tokens[mine], text_tokens), points.error[mine],
                 color=color, label=f"N = {_params(n)}", zorder=3)
    v = np.geomspace(v_low, v_high, 100)
    axes.plot(cost_fn(n, v, text_tokens), fit.predict_error(n, v, text_tokens),
              color=color, linewidth=1)

  costs = cost_fn(points.llm_params_b, points.visual_tokens, text_tokens)
  budgets = np.geomspace(costs.min(), costs.max(), 100)
  best = [p for p in frontier(fit, budgets, text_tokens, cost_fn=cost_fn,
                              llm_params_range=(n_values[0], n_values[-1]))
          if p is not None]
  axes.plot([p.budget_flops for p in best], [p.error for p in best], "k--",
            label="fitted frontier")

  axes.set_xscale("log")
  axes.set_xlabel(f"inference FLOPs (Q = {text_tokens:.3g} text tokens)")
  axes.set_ylabel("error (1 − accuracy)")
  tokens = "Q + V" if fit.tokens_include_text else "V"
  axes.set_title(f"Y = A·N^−α·T^−β + D, T = {tokens}: "
                 f"α = {fit.alpha:.3f}, β = {fit.beta:.3f}")
  axes.grid(True, which="both", alpha=0.3)
  axes.legend(fontsize="small")
  directory = os.path.dirname(os.fspath(path))
  if directory:
    os.makedirs(directory, exist_ok=True)
  figure.savefig(path, dpi=120, bbox_inches="tight")
  return path


def _params(billions):
  """0.5 -> '500M', 5.1e-05 -> '51k'."""
  for scale, unit in ((1, "B"), (1e-3, "M"), (1e-6, "k")):
    if billions >= scale:
      return f"{billions / scale:.3g}{unit}"
  return f"{billions * 1e9:.3g}"
