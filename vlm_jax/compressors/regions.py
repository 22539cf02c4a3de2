"""Target-grid geometry shared by the compressors: budget -> h x w grid, adaptive regions.

Region i of n along a side of g tokens spans [floor(i*g/n), ceil((i+1)*g/n)), the
boundaries of PyTorch's adaptive pooling: equal k x k blocks (k = g/n) when n divides
g, otherwise regions whose sides differ by one and that overlap by one token where
floor and ceil differ (27 -> 4: [0, 7), [6, 14), [13, 21), [20, 27)).
Tokens are row-major: token s = r*g + c, region v = i*w + j.
"""
import math

import jax.numpy as jnp
import numpy as np


def grid_shape(config, g):
  """(h, w) of the target grid of compressor `config` on a g x g input grid."""
  budget, grid = config.get("budget"), config.get("grid")
  if config.name == "identity":
    if budget not in (None, g * g) or (grid is not None and tuple(grid) != (g, g)):
      raise ValueError(f"identity keeps all {g * g} tokens of the {g}x{g} grid; "
                       f"got budget={budget}, grid={grid}")
    return g, g
  if (budget is None) == (grid is None):
    raise ValueError(f"compressor {config.name!r} needs exactly one of budget (a square "
                     f"token count) or grid=(h, w); got budget={budget}, grid={grid}")
  if grid is not None:
    if len(grid) != 2 or not all(isinstance(n, int) for n in grid):
      raise ValueError(f"grid must be two ints (h, w), got {grid!r}")
    h, w = grid
  else:
    h = w = square_side(budget)
  if not (1 <= h <= g and 1 <= w <= g):
    raise ValueError(f"target grid {h}x{w} does not fit the {g}x{g} input grid")
  return h, w


def square_side(budget):
  """The side n of a square budget n*n; ValueError for another."""
  if not isinstance(budget, int) or budget < 1 or math.isqrt(budget) ** 2 != budget:
    raise ValueError(f"budget {budget!r} is not a perfect square; set grid=(h, w) "
                     "for a non-square target grid")
  return math.isqrt(budget)


def largest_region_side(g, budgets):
  """The largest region side over square `budgets` on a g x g grid (a multi-budget
  QueCC's base kernel side)."""
  return max(region_taps(g, square_side(b))[0].shape[1] for b in budgets)


def grid_size(features, multi_features=None):
  """g of features (B, g, g, d), checking multi_features (B, g, g, L*d) agrees."""
  if features.ndim != 4 or features.shape[1] != features.shape[2]:
    raise ValueError(f"features must be (B, g, g, d), got shape {features.shape}")
  if multi_features is not None and (
      multi_features.ndim != 4 or multi_features.shape[:3] != features.shape[:3]):
    raise ValueError(f"multi_features {multi_features.shape} must be (B, g, g, L*d) with "
                     f"B, g of features {features.shape}")
  return features.shape[1]


def target_grid(config, features, multi_features=None):
  """(g, h, w): the side of features (B, g, g, d) (checked against multi_features) and
  the h x w target grid of compressor `config` on it."""
  g = grid_size(features, multi_features)
  return (g, *grid_shape(config, g))


def flatten_grid(x, dtype):
  """(B, g, g, c) -> (B, g*g, c) in dtype, tokens row-major."""
  return x.astype(dtype).reshape(x.shape[0], -1, x.shape[-1])


def region_means(x, g, h, w):
  """x (B, g*g, d) -> (B, h*w, d): each region's mean (PyTorch's adaptive_avg_pool2d)."""
  return jnp.einsum("vs,bsd->bvd", jnp.asarray(pooling_matrix(g, h, w), x.dtype), x)


def adaptive_bounds(g, n):
  """(n, 2) int array: [start, end) of each of n regions along a side of g tokens."""
  i = np.arange(n)
  return np.stack([i * g // n, -(-(i + 1) * g // n)], axis=1)


def _side_mask(g, n):
  """(n, g) bool: token t lies in region i along one side."""
  bounds = adaptive_bounds(g, n)
  t = np.arange(g)
  return (t >= bounds[:, :1]) & (t < bounds[:, 1:])


def region_mask(g, h, w):
  """(h*w, g*g) bool: token s belongs to region v."""
  rows, cols = _side_mask(g, h), _side_mask(g, w)
  return (rows[:, None, :, None] & cols[None, :, None, :]).reshape(h * w, g * g)


def pooling_matrix(g, h, w):
  """(h*w, g*g) float32 whose row v averages region v: adaptive average pooling."""
  mask = region_mask(g, h, w).astype(np.float32)
  return mask / mask.sum(axis=1, keepdims=True)


def region_taps(g, n):
  """Kernel taps along one side: (n, k) token index and (n, k) bool inside-region.

  k is the largest region side; tap p of region i is token start_i + p, outside the
  region (masked) once p reaches the region's own side (indices clipped to the grid).
  """
  bounds = adaptive_bounds(g, n)
  k = int((bounds[:, 1] - bounds[:, 0]).max())
  taps = bounds[:, :1] + np.arange(k)
  return np.minimum(taps, g - 1), taps < bounds[:, 1:]
