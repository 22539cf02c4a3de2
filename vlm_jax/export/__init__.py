"""Exporters of our models to Hugging Face folders, the way back from vlm_jax.convert.

`to_hf(spec, dst)` writes a model folder, a training workdir or `DIR@STEP` as safetensors
(streamed one tensor at a time, sharded above `max_shard_bytes`, float32 or bfloat16),
config.json and the files that feed it (vlm_jax.export.feeding), in the layout of its
architecture (vlm_jax.export.layouts): an LLM as Qwen2/LlamaForCausalLM, a VLM with the
identity compressor as LlavaForConditionalGeneration, with QueCC as the paper's
LLaVA-QueCC beside its CLIP tower. `vlm_jax.convert.from_hf` reads each back exactly.
"""
import os

from vlm_jax import errors
from vlm_jax.export import feeding, layouts, paper_quecc, safetensors_writer, source, tensors

MAX_SHARD_BYTES = 5 * 10**9  # transformers' default shard size ("5GB")
CONFIG_FILE = "config.json"


def to_hf(spec, dst, dtype="float32", max_shard_bytes=MAX_SHARD_BYTES, budget=None,
          vision_tower=None):
  """Exports `spec` into the new (or empty) folder `dst`. -> {part folder: files written}.

  budget: QueCC only, the budget to export: a single-budget checkpoint's own (the
  default), one of a multi-budget checkpoint's budgets (required; "all" is refused, as
  the paper's layout holds one kernel: vlm_jax.export.paper_quecc.at_budget).
  vision_tower: QueCC only, what the config's `mm_vision_tower` names (default the
  exported tower folder, absolute).
  """
  if dtype not in safetensors_writer.DTYPES:
    raise errors.BadValueError(f"dtype {dtype!r} is not supported; supported: "
                               f"{', '.join(safetensors_writer.DTYPES)}")
  if os.path.exists(dst) and not (os.path.isdir(dst) and not os.listdir(dst)):
    raise errors.BadValueError(f"{dst} exists and is not an empty folder: export into a new one")
  written = {}
  with source.open_params(spec) as (config, leaves):
    parts = _parts(config, leaves, dst, budget, vision_tower)
    covered = set().union(*(part.rules for part in parts))
    missing = sorted(set(leaves.shapes) - covered)
    if missing:
      raise ValueError(f"no tensor name for params {['/'.join(p) for p in missing]}")
    for part in parts:
      folder = os.path.join(dst, part.folder)
      os.makedirs(folder, exist_ok=True)
      plan = tensors.plan(part.rules, leaves.shapes)
      files = safetensors_writer.write(folder, plan, leaves, dtype, max_shard_bytes)
      # transformers 5 reads `dtype`, 4.x `torch_dtype`.
      hf = dict(part.config, dtype=dtype, torch_dtype=dtype)
      feeding.write_json(os.path.join(folder, CONFIG_FILE), hf)
      if part.tokenizer:
        files += feeding.write_tokenizer(config, folder)
      for name, content in part.files.items():
        feeding.write_json(os.path.join(folder, name), content)
      written[part.folder] = sorted({CONFIG_FILE, *files, *part.files})
  return written


def _parts(config, leaves, dst, budget, vision_tower):
  """The layout's parts for a model config; an error where no Hugging Face class fits.
  A QueCC's `leaves` then serve its kernel at `budget`."""
  compressor = config.compressor.name if config.kind == "vlm" else None
  if compressor != "quecc" and (budget is not None or vision_tower is not None):
    raise errors.BadValueError("budget and vision_tower choose what a QueCC export writes; "
                               f"this model is a {config.kind}" +
                               (f" with compressor {compressor!r}" if compressor else ""))
  if config.kind == "llm":
    return [layouts.causal_lm(config)]
  if config.kind == "vision":
    return [layouts.vision_model(config)]
  if compressor == "identity":
    return [layouts.llava(config)]
  if compressor == "quecc":
    return paper_quecc.parts(paper_quecc.at_budget(config, leaves, budget),
                             vision_tower or paper_quecc.default_tower_path(dst))
  raise errors.BadValueError(
      f"compressor {compressor!r} has no Hugging Face implementation: --format hf takes "
      "identity (LlavaForConditionalGeneration) and quecc (the paper's LlavaQwenForCausalLM / "
      f"LlavaLlamaForCausalLM); a {compressor} model stays in the vlm-jax checkpoint format "
      "(orbax), the one format that holds it")
