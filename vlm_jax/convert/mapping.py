"""Fills a params tree of known shapes from checkpoint tensors by name rules.

A rule maps one of our param paths (tuple of keys) to (checkpoint name, kind) or
(checkpoint name, kind, (i, n)): the latter takes the i-th of n equal row blocks
first (e.g. q, k, v out of torch's stacked `in_proj_weight`). Names containing
`{i}` are per-layer: the param has a leading `layers` axis and is filled layer by
layer, so only one checkpoint tensor is in memory at a time.
"""
import flax
import numpy as np


class ShapeMismatchError(ValueError):
  pass


def _linear(w, shape, n_in):
  """torch Linear weight (out, in) -> our kernel of `shape`, its first n_in dims the input."""
  want = (int(np.prod(shape[:n_in])), int(np.prod(shape[n_in:])))
  if w.ndim != 2 or w.T.shape != want:
    return None
  return w.T.reshape(shape)


TRANSFORMS = {
    "copy": lambda w, shape: w if w.shape == tuple(shape) else None,
    "reshape": lambda w, shape: w.reshape(shape) if w.size == np.prod(shape) else None,
    "linear": lambda w, shape: _linear(w, shape, 1),
    "linear_from_heads": lambda w, shape: _linear(w, shape, 2),
    # depthwise torch Conv2d (d, 1, kh, kw) -> (kh, kw, d)
    "depthwise_conv": lambda w, shape: (w[:, 0].transpose(1, 2, 0)
                                        if w.ndim == 4 and w.shape[1] == 1 and
                                        w[:, 0].transpose(1, 2, 0).shape == tuple(shape)
                                        else None),
    # torch Conv2d (out, in, kh, kw) -> flax (kh, kw, in, out)
    "conv": lambda w, shape: (w.transpose(2, 3, 1, 0)
                              if w.ndim == 4 and w.transpose(2, 3, 1, 0).shape == tuple(shape)
                              else None),
}


def fill(expected, rules, get):
  """expected: tree of arrays/ShapeDtypeStructs; rules: {path: (name, kind)}; get: name -> array.

  Returns a plain nested dict of float32 numpy arrays with the expected shapes.
  """
  flat = flax.traverse_util.flatten_dict(expected)
  unknown = sorted(set(flat) - set(rules))
  if unknown:
    raise KeyError(f"no checkpoint rule for params {['/'.join(p) for p in unknown]}")
  out = {}
  for path, leaf in flat.items():
    name, kind, *chunk = rules[path]
    if "{i}" in name:
      value = np.empty(leaf.shape, np.float32)
      for i in range(leaf.shape[0]):
        layer_name = name.format(i=i)
        value[i] = _convert(get(layer_name), leaf.shape[1:], kind, layer_name, *chunk)
    else:
      value = _convert(get(name), leaf.shape, kind, name, *chunk)
    out[path] = value
  return flax.traverse_util.unflatten_dict(out)


def _convert(tensor, shape, kind, name, chunk=None):
  if chunk is not None:
    index, count = chunk
    if tensor.shape[0] % count:
      raise ShapeMismatchError(f"tensor {name!r} of shape {tuple(tensor.shape)} does not split "
                               f"into {count} equal row blocks")
    tensor = np.split(tensor, count)[index]
  value = TRANSFORMS[kind](tensor, tuple(shape))
  if value is None:
    raise ShapeMismatchError(
        f"tensor {name!r} has shape {tuple(tensor.shape)}, which does not match the "
        f"config's {tuple(shape)} ({kind})")
  return np.ascontiguousarray(value, dtype=np.float32)


def prefixed(rules, prefix_path, name_prefix):
  """Rules of a submodule placed under `prefix_path` with checkpoint names under `name_prefix`."""
  return {tuple(prefix_path) + p: (name_prefix + rule[0], *rule[1:]) for p, rule in rules.items()}
