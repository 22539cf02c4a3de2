"""A VLM from presets: `vlm:llm=qwen1_5_7b,vision=clip_vit_l_14_336,compressor=quecc,budget=16`.

Select layer -2 and, for the key/value features, the paper's CLIP-L hidden states
(12, 16, 22, 23) scaled to the tower's depth.
"""
import ml_collections

from vlm_jax import compressors
from vlm_jax.configs import one_of, parse_arg, preset


def default_kv_layers(num_layers):
  return tuple(sorted({max(1, round(i * num_layers / 24)) for i in (12, 16, 22, 23)}))


def get_config(arg=None):
  arg = parse_arg(arg, llm="tiny_llm", vision="tiny_vision", compressor="quecc", budget=16,
                  dtype="float32")
  llm, tower = preset(arg.llm).llm, preset(arg.vision).vision
  compressor = compressors.default_config()
  name = one_of("compressor", arg.compressor, compressors.COMPRESSORS.names())
  compressor.update(name=name, budget=arg.budget, select_layer=-2,
                    kv_layers=default_kv_layers(tower.num_layers))
  return ml_collections.ConfigDict(dict(
      kind="vlm", dtype=arg.dtype, llm=llm, vision=tower, compressor=compressor,
      projector=dict(name="mlp2x_gelu"), image_token_id=-200))
