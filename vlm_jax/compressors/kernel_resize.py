"""One QueCC downsampling kernel for every budget: resizing a depthwise kernel to a region side.

QueCC pools each region with a learned depthwise kernel whose side is the region's (k = g/h
on a divisible grid), so the kernel's shape changes with the budget. A multi-budget QueCC
stores one kernel w at a base side K (the largest region side of its budgets) and serves a
budget of region side k with

  w_k = R^T w,   R = area_resize_matrix(k, K): (K, k), upsampling a k-patch to K,

the transpose resize of FlexiViT's pseudo-inverse resize. It is exact in the sense that
matters here: <x, w_k> = <R x, w> for every k x k patch x, i.e. a coarse region is pooled
as its nearest-area upsampling to the base side would be. When K is a multiple of k, R is
nearest-neighbour and w_k sums w over blocks. A per-budget kernel set would instead add
sum_k k^2 * d parameters that each budget trains alone; this shares all of them.

A single-budget kernel w_k becomes a base kernel by the pseudo-inverse, w = pinv(R^T) w_k,
the smallest kernel whose resize gives w_k back exactly: a trained single-budget
checkpoint continues as a multi-budget one with its own budget unchanged.
"""
import jax.numpy as jnp
import numpy as np


def area_resize_matrix(n, size):
  """(size, n) float32: area interpolation of a length-n signal to length `size`.

  Output cell P covers [P·n/size, (P+1)·n/size) of the input; its weight on input cell i
  is the overlap, normalised to sum 1. For size a multiple of n: nearest-neighbour.
  """
  lo = np.arange(size)[:, None] * n / size
  hi = lo + n / size
  cells = np.arange(n)[None, :]
  overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0, None)
  return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)


def resize_kernel(kernel, side):
  """Base kernel (KH, KW, d) -> the kernel (kh, kw, d) of region side `side` = (kh, kw)."""
  rows = area_resize_matrix(side[0], kernel.shape[0])
  cols = area_resize_matrix(side[1], kernel.shape[1])
  return _apply(rows.T, kernel, cols.T)


def base_kernel(kernel, base_side):
  """A single-budget kernel (kh, kw, d) -> the base kernel (KH, KW, d) that `resize_kernel`
  maps back to it exactly (the minimum-norm one)."""
  rows = area_resize_matrix(kernel.shape[0], base_side[0])
  cols = area_resize_matrix(kernel.shape[1], base_side[1])
  return _apply(np.linalg.pinv(rows.T), kernel, np.linalg.pinv(cols.T))


def _apply(rows, kernel, cols):
  """rows (a, KH) @ kernel (KH, KW, d) @ cols^T with cols (b, KW) -> (a, b, d)."""
  return jnp.einsum("ip,pqd,jq->ijd", jnp.asarray(rows, kernel.dtype), kernel,
                    jnp.asarray(cols, kernel.dtype))
