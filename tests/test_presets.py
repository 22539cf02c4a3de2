"""Every model preset has exactly the parameters of its `transformers` twin."""
import os

import pytest
import torch
import transformers

from vlm_jax import configs, models
from vlm_jax.convert import hf_config

PRESETS = sorted(f[:-3] for f in os.listdir(os.path.join(configs.CONFIG_DIR, "models"))
                 if f.endswith(".py") and not f.startswith("_") and f != "vlm.py")


def _hf_param_count(config):
  hf = hf_config.to_hf(config)
  model_class = {
      "llm": {"qwen2": transformers.Qwen2ForCausalLM,
              "llama": transformers.LlamaForCausalLM}.get(config.get("llm", {}).get("family")),
      "vision": (transformers.CLIPVisionModel if config.get("vision", {}).get("family") == "clip"
                 else transformers.SiglipVisionModel),
  }[config.kind]
  with torch.device("meta"):
    model = model_class(hf)
  return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", PRESETS)
def test_param_count_matches_transformers(name):
  config = configs.preset(name)
  assert models.param_count(config) == _hf_param_count(config)


def test_paper_grid_sizes():
  billions = {n: models.param_count(configs.preset(n)) / 1e9
              for n in ("qwen1_5_0_5b", "qwen1_5_1_8b", "qwen1_5_4b", "qwen1_5_7b",
                        "qwen1_5_14b")}
  assert [round(b, 1) for b in billions.values()] == [0.5, 1.8, 4.0, 7.7, 14.2]


def test_unknown_preset_names_the_known_ones():
  with pytest.raises(KeyError, match="qwen1_5_7b"):
    configs.preset("qwen9")
