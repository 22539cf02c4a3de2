"""The paper's LLaVA-QueCC layout (locuslab/llava-token-compression), as its code loads it.

The folder holds `LlavaQwenForCausalLM` / `LlavaLlamaForCausalLM`: the LLM at the top
level (`model.`, `lm_head`), `model.mm_projector.0` = QueCC, `.1` / `.3` the projector,
and the config fields its `build_vision_projector` and `QueCC` read
(`mm_vision_token_compression_*`, `mm_vision_output_*`). Beside it, `vision_tower/` is
the CLIPVisionModel with its image processor, which `mm_vision_tower` names: the
paper's CLIPVisionTower loads both from there.

Its code fixes what our QueCC leaves open: a CLIP tower, a strided conv (kernel =
stride, so the grid must divide into the budget's), 8 heads, and keys/values from
CLIP-L's hidden states (12, 16, 22, 23), 4 x 1024 = 4096 wide. Its one kernel serves one
budget: a multi-budget checkpoint exports one of its budgets at a time (`at_budget`).
"""
import logging
import math
import os

import numpy as np

from vlm_jax import errors
from vlm_jax.compressors import kernel_resize
from vlm_jax.convert import rules
from vlm_jax.convert.mapping import prefixed
from vlm_jax.export import layouts
from vlm_jax.models import vision as vision_lib
from vlm_jax.train import multi_budget

log = logging.getLogger(__name__)

ARCHITECTURES = {"qwen2": ("LlavaQwenForCausalLM", "llava_qwen"),
                 "llama": ("LlavaLlamaForCausalLM", "llava_llama")}
TOWER_FOLDER = "vision_tower"
NUM_HEADS = 8
KV_LAYERS = (12, 16, 22, 23)
KV_WIDTH = 4096
QUECC = "model.mm_projector.0."
KERNEL = ("compressor", "q_downsample", "kernel")  # a multi-budget QueCC's base kernel


def at_budget(config, leaves, budget=None):
  """The single-budget config that the export at `budget` writes; `leaves` then serve its params.

  A single-budget checkpoint exports its own budget (None or that budget). A multi-budget
  one exports the budget V among its budgets that `budget` names (there is no default:
  the export drops the others), its base kernel resized to V's region side as the leaf is
  restored (kernel_resize.resize_kernel). "all" is refused: the paper's code holds one
  kernel per model, so each budget is its own export (`--budget V` into its own folder).
  """
  own, served = config.compressor.budget, multi_budget.budgets(config)
  if not served:
    if budget not in (None, own):
      raise errors.BadValueError(
          f"budget {budget!r}: this QueCC checkpoint holds one kernel, for budget {own}; "
          "exporting other budgets needs a multi-budget checkpoint (compressor.budgets)")
    return config
  if budget not in served:
    raise errors.BadValueError(
        f"budget {budget!r}: this multi-budget QueCC checkpoint serves budgets "
        f"{', '.join(map(str, served))}, and the paper's code holds one kernel per model: "
        "export one with --budget V, each budget into its own folder")
  single = multi_budget.at_budget(config, budget)
  single.compressor.budgets = ()
  side = kernel_size(single)
  base_shape = leaves.shapes[KERNEL]
  leaves.transform(KERNEL, lambda kernel: np.asarray(kernel_resize.resize_kernel(
      kernel, (side, side))), (side, side, base_shape[-1]))
  return single


def kernel_size(config):
  """The side k of the QueCC kernel of single-budget `config` (kernel = stride)."""
  compressor, g = config.compressor, vision_lib.grid_size(config.vision)
  side = math.isqrt(compressor.budget or 0)
  if compressor.grid is not None or side * side != compressor.budget or g % side:
    raise errors.BadValueError(
        f"QueCC to {compressor.grid or compressor.budget} tokens over the {g}x{g} grid needs "
        "adaptive regions, which the paper's strided conv cannot express: its layout takes "
        f"square budgets whose side divides {g}")
  return g // side


def parts(config, tower_path):
  """[the paper's checkpoint, its vision tower] for single-budget `config` (`at_budget`);
  `tower_path`: what `mm_vision_tower` names (the tower folder itself, or its Hub id)."""
  _check(config)
  kernel = kernel_size(config)
  architecture, model_type = ARCHITECTURES[config.llm.family]
  g = vision_lib.grid_size(config.vision)
  processor = config.get("processor") or {}
  hf = dict(
      layouts.llm_config(config.llm), architectures=[architecture], model_type=model_type,
      mm_vision_tower=tower_path, mm_vision_select_layer=config.compressor.select_layer,
      mm_vision_select_feature="patch", mm_hidden_size=config.vision.hidden_size,
      mm_projector_type="mlp2x_gelu", mm_patch_merge_type="flat", use_mm_proj=True,
      mm_use_im_start_end=False, mm_use_im_patch_token=False,
      image_aspect_ratio=processor.get("aspect") or "square",
      mm_vision_token_compression_type="quecc", mm_vision_output_token_count=g * g,
      mm_vision_output_text_embedding_size=config.llm.hidden_size,
      mm_vision_output_combined_token_count=None,
      mm_vision_token_compression_kernel_size=kernel,
      mm_vision_token_compression_stride=kernel)
  name_rules = {
      **prefixed(rules.llm_rules(config.llm), ("llm",), "model."),
      **prefixed(rules.lm_head_rules(config.llm), ("llm",), ""),
      **prefixed(rules.quecc_rules(), ("compressor",), QUECC),
      **prefixed(rules.projector_rules("1", "3"), ("projector",), "model.mm_projector.")}
  return [layouts.Part("", hf, name_rules, {}, True),
          layouts.vision_model(config, TOWER_FOLDER, ("vision",))]


def default_tower_path(dst):
  """The exported tower folder, absolute: the paper's loader and ours find it from anywhere."""
  return os.path.abspath(os.path.join(dst, TOWER_FOLDER))


def _check(config):
  compressor, vision = config.compressor, config.vision
  if vision.family != "clip":
    raise errors.BadValueError(f"the paper's LLaVA-QueCC loads a CLIP tower (CLIPVisionModel); "
                               f"this model's is {vision.family}")
  if config.projector.name != "mlp2x_gelu":
    raise errors.BadValueError(f"the paper's LLaVA-QueCC projector is mlp2x_gelu; this "
                               f"model's is {config.projector.name!r}")
  if compressor.num_heads != NUM_HEADS:
    raise errors.BadValueError(f"the paper's QueCC has {NUM_HEADS} heads; this model's has "
                               f"{compressor.num_heads}")
  kv_layers = tuple(compressor.kv_layers)
  if kv_layers != KV_LAYERS or len(kv_layers) * vision.hidden_size != KV_WIDTH:
    log.warning("QueCC keys/values from hidden states %s, %d wide: the paper's code takes %s "
                "(%d wide), so only vlm-jax reads this export exactly (vlm-jax convert "
                "--kv-layers %s)", kv_layers, len(kv_layers) * vision.hidden_size, KV_LAYERS,
                KV_WIDTH, ",".join(map(str, kv_layers)))
