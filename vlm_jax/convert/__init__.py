"""Importers of Hugging Face (and the paper's PyTorch) checkpoints into our params.

`from_hf(path) -> (config, params)` reads a local model folder (config.json and
safetensors, sharded or not, or PyTorch .bin) one tensor at a time;
`convert(src, dst)` writes it as our checkpoint with the source's tokenizer files.
"""
import inspect
import json
import logging
import os

import flax.linen as nn

from vlm_jax import checkpoints, compressors, configs, models
from vlm_jax.convert import hf_config, processor, rules
from vlm_jax.convert.mapping import fill, prefixed
from vlm_jax.convert.tensors import TensorReader
from vlm_jax.models import vision as vision_lib
from vlm_jax.registry import Registry

ARCHITECTURES = Registry("architecture")


@ARCHITECTURES.register("Qwen2ForCausalLM")
@ARCHITECTURES.register("LlamaForCausalLM")
def _causal_lm(hf, reader):
  del reader
  llm = hf_config.llm_config(hf)
  return (hf_config.model_config("llm", llm=llm),
          {**prefixed(rules.llm_rules(llm), (), "model."), **rules.lm_head_rules(llm)})


@ARCHITECTURES.register("SiglipVisionModel")
@ARCHITECTURES.register("SiglipModel")
@ARCHITECTURES.register("CLIPVisionModel")
def _vision_model(hf, reader):
  vision = hf_config.vision_config(hf.get("vision_config", hf))
  prefix = _prefix(reader.names(), "embeddings.patch_embedding.weight", ("vision_model.", ""))
  return (hf_config.model_config("vision", vision=vision),
          prefixed(rules.vision_rules(vision), (), prefix))


@ARCHITECTURES.register("LlavaForConditionalGeneration")
def _llava(hf, reader):
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
  names = reader.names()
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


@ARCHITECTURES.register("LlavaQwenForCausalLM")
@ARCHITECTURES.register("LlavaQwen2ForCausalLM")
@ARCHITECTURES.register("LlavaLlamaForCausalLM")
def _llava_quecc(hf, reader, vision_tower=None, kv_layers=None):
  """The paper's LLaVA-QueCC: the LLM at the top level, `model.mm_projector.{0,1,3}`, CLIP.

  The tower's config comes from the folder `vision_tower` (its weights too, unless the
  checkpoint holds them under `model.vision_tower.vision_tower.`), else from the
  config's `mm_vision_tower`. The budget follows from the QueCC kernel; the key/value
  layers default to the paper's (12, 16, 22, 23).
  """
  family = "llama" if "llama" in hf.get("model_type", "") else "qwen2"
  llm = hf_config.llm_config(dict(hf, model_type=family))
  tower_name = vision_tower or hf.get("mm_vision_tower")
  if tower_name and os.path.exists(os.path.join(tower_name, "config.json")):
    with open(os.path.join(tower_name, "config.json")) as f:
      vision = hf_config.vision_config(json.load(f))
    reader.add_fallback(tower_name)
  elif tower_name == "openai/clip-vit-large-patch14-336":
    vision = configs.preset("clip_vit_l_14_336").vision
  else:
    raise ValueError(f"vision tower {tower_name!r} has no local config: pass vision_tower=FOLDER")
  quecc = "model.mm_projector.0."
  kernel = reader.get(quecc + "q_downsample.weight").shape[-1]
  num_kv_layers = reader.get(quecc + "k_proj.0.weight").shape[1] // vision.hidden_size
  kv_layers = tuple(kv_layers or (12, 16, 22, 23))
  if len(kv_layers) != num_kv_layers:
    raise ValueError(f"{quecc}k_proj.0.weight takes {num_kv_layers} layers of features; "
                     f"kv_layers={kv_layers} has {len(kv_layers)}")
  compressor = compressors.default_config(
      name="quecc", budget=(vision_lib.grid_size(vision) // kernel) ** 2,
      select_layer=hf.get("mm_vision_select_layer", -2), kv_layers=kv_layers)
  config = hf_config.model_config(
      "vlm", llm=llm, vision=vision, compressor=compressor, projector=dict(name="mlp2x_gelu"),
      image_token_id=-200)
  tower = _prefix(reader.names(), "embeddings.patch_embedding.weight", (
      "model.vision_tower.vision_tower.vision_model.", "vision_model.", ""))
  return config, {
      **prefixed(rules.llm_rules(llm), ("llm",), "model."),
      **prefixed(rules.lm_head_rules(llm), ("llm",), ""),
      **prefixed(rules.vision_rules(vision), ("vision",), tower),
      **prefixed(rules.quecc_rules(), ("compressor",), quecc),
      **prefixed(rules.projector_rules("1", "3"), ("projector",), "model.mm_projector.")}


def _prefix(names, probe, candidates):
  """The first candidate prefix under which `probe` exists (layouts differ across versions)."""
  for prefix in candidates:
    if prefix + probe in names:
      return prefix
  raise KeyError(f"tensor {probe!r} is missing (looked under prefixes {candidates})")


def from_hf(path, **options):
  """Local Hugging Face model folder -> (our model config, plain params tree of np.float32).

  options go to the architecture's converter (the paper's LLaVA-QueCC takes
  `vision_tower=FOLDER` and `kv_layers=(...)`).
  """
  config_path = os.path.join(path, "config.json")
  if not os.path.exists(config_path):
    raise FileNotFoundError(f"{path} is not a Hugging Face model folder: it has no config.json")
  with open(config_path) as f:
    hf = json.load(f)
  architecture = (hf.get("architectures") or [None])[0]
  if architecture not in ARCHITECTURES.names():
    raise ValueError(f"unsupported architecture {architecture!r} in {path}; "
                     f"supported: {', '.join(ARCHITECTURES.names())}")
  converter = ARCHITECTURES.get(architecture)
  unknown = set(options) - set(inspect.signature(converter).parameters)
  if unknown:
    raise ValueError(f"{architecture} takes no option(s) {sorted(unknown)}")
  reader = TensorReader(path)
  config, name_rules = converter(hf, reader, **options)
  params = fill(nn.unbox(models.abstract_params(config)), name_rules, reader.get)
  if reader.unused():
    logging.warning("not converted (unused by this model): %s", ", ".join(reader.unused()))
  tower = options.get("vision_tower") or hf.get("mm_vision_tower")
  image_folder = tower if tower and os.path.isdir(tower) else None
  config.processor = processor.processor_config(path, config, hf, image_folder)
  if config.processor.tokenizer and config.kind != "vision":
    processor.check_tokenizer(config, path)
  return config, params


def convert(src, dst, **options):
  """Converts folder `src` into checkpoint `dst` (vlm_jax.checkpoints), its tokenizer and
  processor files copied in; -> the model config."""
  if not os.path.isdir(src):
    raise FileNotFoundError(f"{src} is not a folder")
  config, params = from_hf(src, **options)
  if config.processor.tokenizer:
    config.processor.tokenizer = processor.copy_tokenizer(src, dst)
  checkpoints.save(dst, config, params)
  return config
