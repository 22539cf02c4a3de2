"""Inference cost models: cost_fn(n_params_b, visual_tokens, text_tokens) -> FLOPs.

A cost function must be increasing in N and in V and work elementwise on numpy
arrays (wrap a scalar-only one in `np.vectorize`).
"""
from collections.abc import Callable

from numpy.typing import ArrayLike

CostFn = Callable[[ArrayLike, ArrayLike, ArrayLike], ArrayLike]


def paper_inference_flops(n_params_b, visual_tokens, text_tokens):
  """The paper's C = 2·N·(Q + V) FLOPs per query, N in billions of parameters."""
  return 2.0 * n_params_b * 1e9 * (text_tokens + visual_tokens)
