"""QueCC weights from the paper's PyTorch checkpoints (the first module of mm_projector).

Maps `text_projection.{0,1}`, `{q,k,v}_proj.{0,2,3}`, `q_downsample.{weight,bias}` and
`clip_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias}` to the params
of vlm_jax.compressors.quecc.QueCC (rules in convert/rules.py). Torch Linear weights are
(out, in); the conv weight is depthwise (d, 1, kh, kw); in_proj stacks Wq, Wk, Wv (3d, d).
"""
import flax.linen as nn
import jax
import numpy as np

from vlm_jax import compressors
from vlm_jax.convert.mapping import fill, prefixed
from vlm_jax.convert.rules import quecc_rules


def quecc_params_from_torch(get, prefix="mm_projector.0.", num_heads=8):
  """get(name) -> float32 array (KeyError if missing) -> QueCC params (nested dicts of np.float32).

  Widths come from the checkpoint: d from q_proj, d_t from text_projection, L*d from
  k_proj, the kernel side k from q_downsample; every tensor's shape is checked.
  The result is the module's "params" collection: apply with {"params": result}.
  """
  d = get(prefix + "q_proj.3.weight").shape[0]
  d_text = get(prefix + "text_projection.0.weight").shape[1]
  d_multi = get(prefix + "k_proj.0.weight").shape[1]
  k = get(prefix + "q_downsample.weight").shape[-1]
  if d % num_heads:
    raise ValueError(f"width {d} of {prefix}q_proj is not divisible by num_heads={num_heads}")
  # A k x k grid pooled to one token has exactly the checkpoint's kernel.
  module = compressors.build(compressors.default_config(name="quecc", budget=1,
                                                        num_heads=num_heads))
  expected = jax.eval_shape(module.init, jax.random.key(0),
                            jax.ShapeDtypeStruct((1, k, k, d), np.float32),
                            jax.ShapeDtypeStruct((1, k, k, d_multi), np.float32),
                            jax.ShapeDtypeStruct((1, d_text), np.float32))["params"]
  return fill(nn.unbox(expected), prefixed(quecc_rules(), (), prefix), get)
