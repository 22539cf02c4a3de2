"""Hugging Face layouts of our models: the folders an export writes, each a `Part`.

A part's name rules are the importer's tables (vlm_jax.convert.rules) under the
prefixes of the layout written, so `vlm_jax.convert.from_hf` reads every export back:
- llm: `Qwen2ForCausalLM` / `LlamaForCausalLM`;
- vision: `CLIPVisionModel` / `SiglipVisionModel`;
- vlm with the identity compressor: `LlavaForConditionalGeneration`, in llava-hf's
  checkpoint layout (`language_model.model.`), which transformers 4.x and 5.x read;
- vlm with QueCC: the paper's layout (vlm_jax.export.paper_quecc).
LLM configs carry rope in both layouts: `rope_parameters` (as transformers 5 writes)
and `rope_theta` / `rope_scaling` (as 4.x reads).
"""
from typing import NamedTuple

from vlm_jax import errors
from vlm_jax.convert import hf_config, rules
from vlm_jax.convert.mapping import prefixed
from vlm_jax.export import feeding
from vlm_jax.models import vision as vision_lib

CAUSAL_LMS = {"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM"}
VISION_MODELS = {"clip": "CLIPVisionModel", "siglip": "SiglipVisionModel"}


class Part(NamedTuple):
  folder: str  # relative to the export's folder ("" for the folder itself)
  config: dict  # its config.json
  rules: dict  # param path -> (tensor name, kind[, chunk]) (vlm_jax.convert.mapping)
  files: dict  # other JSON files it holds: {file name: content}
  tokenizer: bool  # whether the tokenizer files go here


def llm_config(llm):
  """The transformers config dict of our LLM config, rope also in 4.x's keys."""
  hf = hf_config.to_hf(hf_config.model_config("llm", llm=llm)).to_dict()
  rope = dict(hf["rope_parameters"])
  hf["rope_theta"] = rope.pop("rope_theta")
  if rope["rope_type"] != "default":  # absent is 4.x's default (and spares 5.x a warning)
    hf["rope_scaling"] = rope
  return hf


def causal_lm(config):
  llm = config.llm
  feeding.warn_unless_hf_template(config)
  hf = dict(llm_config(llm), architectures=[CAUSAL_LMS[llm.family]])
  return Part("", hf, {**prefixed(rules.llm_rules(llm), (), "model."),
                       **rules.lm_head_rules(llm)}, {}, True)


def vision_model(config, folder="", path=()):
  """The tower of `config` as a *VisionModel; its params under `path` of ours."""
  vision = config.vision
  hf = hf_config.to_hf(hf_config.model_config("vision", vision=vision)).to_dict()
  hf["architectures"] = [VISION_MODELS[vision.family]]
  return Part(folder, hf, prefixed(rules.vision_rules(vision), path, "vision_model."),
              {feeding.IMAGE_PROCESSOR_FILE: feeding.image_processor_config(config)}, False)


def llava(config):
  """LlavaForConditionalGeneration and its LlavaProcessor's configs."""
  if config.projector.name != "mlp2x_gelu":
    raise errors.BadValueError(
        f"projector {config.projector.name!r} has no LlavaForConditionalGeneration form: "
        "its projector is mlp2x_gelu (linear_1, GELU, linear_2)")
  feeding.warn_unless_hf_template(config)
  image_token_id = feeding.llava_image_token_id(config)
  hf = hf_config.to_hf(config).to_dict()
  hf.update(architectures=["LlavaForConditionalGeneration"], image_token_index=image_token_id,
            image_seq_length=vision_lib.grid_size(config.vision) ** 2,
            text_config=llm_config(config.llm))
  name_rules = {
      **prefixed(rules.llm_rules(config.llm), ("llm",), "language_model.model."),
      **prefixed(rules.lm_head_rules(config.llm), ("llm",), "language_model."),
      **prefixed(rules.vision_rules(config.vision), ("vision",), "vision_tower.vision_model."),
      **prefixed(rules.projector_rules(), ("projector",), "multi_modal_projector.")}
  return Part("", hf, name_rules, feeding.llava_processor_files(config), True)
