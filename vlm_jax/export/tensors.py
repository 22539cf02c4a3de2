"""Our params as Hugging Face tensors: the importer's name rules run backwards.

A rule (vlm_jax.convert.mapping) maps a param path to (name, kind) or (name, kind, (i, n)).
Backwards, each tensor name gets its shape and a `build` from the params it comes from:
the inverse of the rule's transform, layer i of a stacked param for names with `{i}`, and
the n row blocks of a chunked name (torch's stacked `in_proj_weight`) concatenated.
"""
from typing import Callable, NamedTuple

import numpy as np

# The inverse of each vlm_jax.convert.mapping.TRANSFORMS kind: views where they can be.
INVERSE = {
    "copy": lambda x: x,
    "reshape": lambda x: x.reshape(-1),  # every "reshape" target is a 1-D torch bias
    "linear": lambda x: x.reshape(x.shape[0], -1).T,  # kernel (in, out...) -> (out, in)
    "linear_from_heads": lambda x: x.reshape(x.shape[0] * x.shape[1], -1).T,
    "depthwise_conv": lambda x: x.transpose(2, 0, 1)[:, None],  # (kh, kw, d) -> (d, 1, kh, kw)
    "conv": lambda x: x.transpose(3, 2, 0, 1),  # (kh, kw, in, out) -> (out, in, kh, kw)
}


class Tensor(NamedTuple):
  name: str
  shape: tuple
  paths: tuple  # the params it is built from
  build: Callable  # [param arrays, one per path] -> the tensor


def plan(rules, shapes):
  """rules {path: rule}, shapes {path: shape} -> [Tensor], param by param in rule order."""
  by_name = {}
  for path, (name, kind, *chunk) in rules.items():
    by_name.setdefault(name, []).append((chunk[0][0] if chunk else 0, path, kind))
  tensors = []
  for name, parts in by_name.items():
    parts.sort()
    paths = tuple(path for _, path, _ in parts)
    kinds = tuple(kind for _, _, kind in parts)
    if "{i}" not in name:
      tensors.append(_tensor(name, paths, kinds, [shapes[p] for p in paths], None))
      continue
    for i in range(shapes[paths[0]][0]):
      tensors.append(_tensor(name.format(i=i), paths, kinds, [shapes[p][1:] for p in paths], i))
  return tensors


def _tensor(name, paths, kinds, shapes, layer):
  def build(arrays):
    pieces = [INVERSE[k](a if layer is None else a[layer]) for k, a in zip(kinds, arrays)]
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

  pieces = [INVERSE[k](_shaped(s)).shape for k, s in zip(kinds, shapes)]
  shape = (sum(p[0] for p in pieces), *pieces[0][1:])
  return Tensor(name, shape, paths, build)


def _shaped(shape):
  """An array of `shape` without memory (all strides 0): the inverses keep it a view."""
  return np.lib.stride_tricks.as_strided(np.zeros((), np.float32), shape, (0,) * len(shape))
