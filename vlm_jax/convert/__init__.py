"""Importers of Hugging Face (and the paper's PyTorch) checkpoints into our params.

`from_hf(path) -> (config, params)` reads a local model folder (config.json and
safetensors, sharded or not, or PyTorch .bin) one tensor at a time.
"""
import json
import logging
import os

import flax.linen as nn

from vlm_jax import compressors, models
from vlm_jax.convert import hf_config, rules
from vlm_jax.convert.mapping import fill, prefixed
from vlm_jax.convert.tensors import TensorReader
from vlm_jax.registry import Registry

ARCHITECTURES = Registry("architecture")


@ARCHITECTURES.register("Qwen2ForCausalLM")
@ARCHITECTURES.register("LlamaForCausalLM")
def _causal_lm(hf, names):
  del names
  llm = hf_config.llm_config(hf)
  return (hf_config.model_config("llm", llm=llm),
          {**prefixed(rules.llm_rules(llm), (), "model."), **rules.lm_head_rules(llm)})


@ARCHITECTURES.register("SiglipVisionModel")
@ARCHITECTURES.register("SiglipModel")
@ARCHITECTURES.register("CLIPVisionModel")
def _vision_model(hf, names):
  vision = hf_config.vision_config(hf.get("vision_config", hf))
  prefix = _prefix(names, "embeddings.patch_embedding.weight", ("vision_model.", ""))
  return (hf_config.model_config("vision", vision=vision),
          prefixed(rules.vision_rules(vision), (), prefix))


@ARCHITECTURES.register("LlavaForConditionalGeneration")
def _llava(hf, names):
  llm = hf_config.llm_config(hf["text_config"])
  vision = hf_config.vision_config(hf["vision_config"])
  layer = hf.get("vision_feature_layer", -2)
  strategy = hf.get("vision_feature_select_strategy", "default")
  if not isinstance(layer, int):
    raise ValueError(f"unsupported vision_feature_layer {layer!r}: one layer index expected")
  if (strategy == "default") != (vision.family == "clip"):
    raise ValueError(f"vision_feature_select_strategy {strategy!r} with a {vision.family} "
                     "tower is unsupported: the class token (CLIP only) must be dropped")
  if hf.get("projector_hidden_act", "gelu") != "gelu":
    raise ValueError(f"unsupported projector_hidden_act {hf['projector_hidden_act']!r}")
  compressor = compressors.default_config()
  compressor.update(name="identity", select_layer=layer, kv_layers=(layer,))
  config = hf_config.model_config(
      "vlm", llm=llm, vision=vision, compressor=compressor,
      projector=dict(name="mlp2x_gelu"),
      image_token_id=hf.get("image_token_index", hf.get("image_token_id")))
  # Checkpoint layouts differ across transformers versions.
  lm = _prefix(names, "embed_tokens.weight", ("model.language_model.", "language_model.model."))
  head = "language_model." if "language_model.lm_head.weight" in names else ""
  tower = _prefix(names, "embeddings.patch_embedding.weight", (
      "model.vision_tower.vision_model.", "model.vision_tower.", "vision_tower.vision_model.",
      "vision_tower."))
  proj = _prefix(names, "linear_1.weight", ("model.multi_modal_projector.",
                                           "multi_modal_projector."))
  return config, {
      **prefixed(rules.llm_rules(llm), ("llm",), lm),
      **prefixed(rules.lm_head_rules(llm), ("llm",), head),
      **prefixed(rules.vision_rules(vision), ("vision",), tower),
      **prefixed(rules.projector_rules(), ("projector",), proj)}


def _prefix(names, probe, candidates):
  """The first candidate prefix under which `probe` exists (layouts differ across versions)."""
  for prefix in candidates:
    if prefix + probe in names:
      return prefix
  raise KeyError(f"tensor {probe!r} is missing (looked under prefixes {candidates})")


def from_hf(path):
  """Local Hugging Face model folder -> (our model config, plain params tree of np.float32)."""
  with open(os.path.join(path, "config.json")) as f:
    hf = json.load(f)
  architecture = (hf.get("architectures") or [None])[0]
  if architecture not in ARCHITECTURES.names():
    raise ValueError(f"unsupported architecture {architecture!r} in {path}; "
                     f"supported: {', '.join(ARCHITECTURES.names())}")
  reader = TensorReader(path)
  config, name_rules = ARCHITECTURES.get(architecture)(hf, reader.names())
  params = fill(nn.unbox(models.abstract_params(config)), name_rules, reader.get)
  if reader.unused():
    logging.warning("not converted (unused by this model): %s", ", ".join(reader.unused()))
  return config, params
