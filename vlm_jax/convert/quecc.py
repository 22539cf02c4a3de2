"""QueCC weights from the paper's PyTorch checkpoints (the first module of mm_projector).

Maps `text_projection.{0,1}`, `{q,k,v}_proj.{0,2,3}`, `q_downsample.{weight,bias}` and
`clip_attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias}` to the params
of vlm_jax.compressors.quecc.QueCC. Torch Linear weights are (out, in); the conv weight
is depthwise (d, 1, kh, kw); in_proj stacks Wq, Wk, Wv as (3d, d).
"""
import numpy as np

def quecc_params_from_torch(get, prefix="mm_projector.0.", num_heads=8):
  """get(name) -> float32 array (KeyError if missing) -> QueCC params (nested dicts of np.float32).

  Widths come from the checkpoint: d from q_proj, d_t from text_projection, L*d from
  k_proj, the kernel from q_downsample; every tensor's shape is checked against them.
  The result is the module's "params" collection: apply with {"params": result}.
  """

  def tensor(name, shape):
    value = np.asarray(get(prefix + name), dtype=np.float32)
    if value.shape != tuple(shape):
      raise ValueError(f"tensor {prefix + name!r} has shape {value.shape}, expected "
                       f"{tuple(shape)}")
    return value

  def size(name, ndim):
    value = np.asarray(get(prefix + name))
    if value.ndim != ndim:
      raise ValueError(f"tensor {prefix + name!r} has shape {value.shape}, expected {ndim} dims")
    return value.shape

  d, = size("q_proj.3.weight", 1)
  _, d_text = size("text_projection.0.weight", 2)
  _, d_multi = size("k_proj.0.weight", 2)
  _, _, kh, kw = size("q_downsample.weight", 4)
  if d % num_heads:
    raise ValueError(f"width {d} of {prefix}q_proj is not divisible by num_heads={num_heads}")
  head_dim = d // num_heads

  def linear(name, d_in, d_out):
    return {"kernel": tensor(f"{name}.weight", (d_out, d_in)).T,
            "bias": tensor(f"{name}.bias", (d_out,))}

  def norm(name):
    return {"scale": tensor(f"{name}.weight", (d,)), "bias": tensor(f"{name}.bias", (d,))}

  def stack(name, d_in):
    return {"dense_in": linear(f"{name}.0", d_in, d), "dense_out": linear(f"{name}.2", d, d),
            "norm": norm(f"{name}.3")}

  in_weight = tensor("clip_attn.in_proj_weight", (3 * d, d))
  in_bias = tensor("clip_attn.in_proj_bias", (3 * d,))
  attention = {
      part: {"kernel": in_weight[i * d:(i + 1) * d].T.reshape(d, num_heads, head_dim),
             "bias": in_bias[i * d:(i + 1) * d].reshape(num_heads, head_dim)}
      for i, part in enumerate(("query", "key", "value"))}
  attention["out"] = {
      "kernel": tensor("clip_attn.out_proj.weight", (d, d)).T.reshape(num_heads, head_dim, d),
      "bias": tensor("clip_attn.out_proj.bias", (d,))}
  params = {
      "text_projection": linear("text_projection.0", d_text, d),
      "text_norm": norm("text_projection.1"),
      "q_proj": stack("q_proj", d),
      "k_proj": stack("k_proj", d_multi),
      "v_proj": stack("v_proj", d_multi),
      "q_downsample": {
          "kernel": tensor("q_downsample.weight", (d, 1, kh, kw))[:, 0].transpose(1, 2, 0),
          "bias": tensor("q_downsample.bias", (d,))},
      "region_attention": attention,
  }
  return _contiguous(params)


def _contiguous(tree):
  if isinstance(tree, dict):
    return {k: _contiguous(v) for k, v in tree.items()}
  return np.ascontiguousarray(tree, dtype=np.float32)
