"""Converted Hugging Face models give the logits / hidden states of `transformers`."""
import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

import hf_models
from vlm_jax import convert, models

TOL = 1e-4


def _run(path, **inputs):
  config, params = convert.from_hf(path)
  out = models.build(config).apply({"params": params}, **{k: jnp.asarray(v) for k, v in inputs.items()})
  return config, out


@pytest.mark.parametrize("arch", ["qwen2", "llama3"])
def test_causal_lm_logits(tmp_path, arch):
  if arch == "qwen2":
    model = transformers.Qwen2ForCausalLM(hf_models.qwen2_config())
  else:
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=256,
        tie_word_embeddings=False, rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=16)))
  path = hf_models.save(hf_models.randomize(model), tmp_path / arch)
  ids, mask = hf_models.padded_batch(np.random.default_rng(0), 128, [12, 7], 12)
  ref = hf_models.to_numpy(model(input_ids=torch.tensor(ids),
                                 attention_mask=torch.tensor(mask)).logits)
  config, out = _run(path, input_ids=ids, attention_mask=mask)
  assert config.llm.tie_embeddings == (arch == "qwen2")
  assert np.abs(np.asarray(out) - ref)[mask > 0].max() <= TOL


def _siglip_config():
  return transformers.SiglipVisionConfig(
      hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
      image_size=32, patch_size=8)


def _clip_config():
  return transformers.CLIPVisionConfig(
      hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
      image_size=28, patch_size=7, projection_dim=16)


@pytest.mark.parametrize("name", ["siglip", "siglip_full_model", "clip"])
def test_vision_hidden_states(tmp_path, name):
  if name == "siglip":
    model = transformers.SiglipVisionModel(_siglip_config())
  elif name == "clip":
    model = transformers.CLIPVisionModel(_clip_config())
  else:
    model = transformers.SiglipModel(transformers.SiglipConfig(
        vision_config=_siglip_config().to_dict(),
        text_config=dict(hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                         num_attention_heads=4, vocab_size=64)))
  path = hf_models.save(hf_models.randomize(model), tmp_path / name)
  size = 28 if name == "clip" else 32
  pixels = np.random.default_rng(1).normal(size=(2, size, size, 3)).astype(np.float32)
  vision = model.vision_model if name == "siglip_full_model" else model
  ref = vision(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)), output_hidden_states=True)
  _, out = _run(path, pixels=pixels)
  got = np.asarray(out["hidden_states"])
  want = np.stack([hf_models.to_numpy(h) for h in ref.hidden_states])
  assert got.shape == want.shape
  assert np.abs(got - want).max() <= TOL
  assert np.abs(np.asarray(out["last_hidden_state"]) -
                hf_models.to_numpy(ref.last_hidden_state)).max() <= TOL
  if name == "clip":
    assert np.abs(np.asarray(out["pooled"]) - hf_models.to_numpy(ref.pooler_output)).max() <= TOL


def test_llava_logits_image_mid_sequence_right_padded(tmp_path):
  image_token = 127
  config = transformers.LlavaConfig(
      vision_config=_siglip_config().to_dict() | {"model_type": "siglip_vision_model"},
      text_config=hf_models.qwen2_config().to_dict(), image_token_index=image_token,
      vision_feature_select_strategy="full", vision_feature_layer=-2,
      projector_hidden_act="gelu")
  model = hf_models.randomize(transformers.LlavaForConditionalGeneration(config))
  path = hf_models.save(model, tmp_path / "llava")
  rng = np.random.default_rng(2)
  v = 16  # (32 / 8) ** 2 visual tokens
  ids, mask = hf_models.padded_batch(rng, 100, [9, 6], 9)
  ids[0, 5], ids[1, 2] = image_token, image_token  # one placeholder, different places
  pixels = rng.normal(size=(2, 32, 32, 3)).astype(np.float32)
  # transformers expects the placeholder repeated once per visual token.
  hf_ids = np.stack([np.concatenate([np.repeat(r, np.where(r == image_token, v, 1))])
                     for r in ids])
  hf_mask = np.stack([np.repeat(m, np.where(r == image_token, v, 1)) for r, m in zip(ids, mask)])
  ref = hf_models.to_numpy(model(
      input_ids=torch.tensor(hf_ids), attention_mask=torch.tensor(hf_mask),
      pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2))).logits)
  _, out = _run(path, input_ids=ids, attention_mask=mask, pixels=pixels)
  assert out.shape == ref.shape
  assert np.abs(np.asarray(out) - ref)[hf_mask > 0].max() <= TOL


def test_hub_style_config_loads(tmp_path):
  """transformers 4.x layout: rope_theta and rope_scaling at the top level."""
  model = hf_models.randomize(transformers.LlamaForCausalLM(transformers.LlamaConfig(
      vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
      rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                           low_freq_factor=1.0, high_freq_factor=4.0,
                           original_max_position_embeddings=16))))
  path = hf_models.save(model, tmp_path / "llama")
  with open(f"{path}/config.json") as f:
    hf = json.load(f)
  rope = hf.pop("rope_parameters")
  hf["rope_theta"] = rope.pop("rope_theta")
  hf["rope_scaling"] = dict(rope, type=rope.pop("rope_type"))
  with open(f"{path}/config.json", "w") as f:
    json.dump(hf, f)
  ids, mask = hf_models.padded_batch(np.random.default_rng(3), 64, [8], 8)
  config, out = _run(path, input_ids=ids, attention_mask=mask)
  assert config.llm.rope_theta == 500000.0 and config.llm.rope_scaling.rope_type == "llama3"
  ref = hf_models.to_numpy(model(input_ids=torch.tensor(ids)).logits)
  assert np.abs(np.asarray(out) - ref).max() <= TOL


def test_absent_tie_word_embeddings_means_untied(tmp_path):
  """A config.json without tie_word_embeddings loads untied, as transformers reads it."""
  model = hf_models.randomize(transformers.Qwen2ForCausalLM(
      hf_models.qwen2_config(tie_word_embeddings=False)))
  path = hf_models.save(model, tmp_path / "qwen2")
  with open(f"{path}/config.json") as f:
    hf = json.load(f)
  hf.pop("tie_word_embeddings", None)
  with open(f"{path}/config.json", "w") as f:
    json.dump(hf, f)
  reloaded = transformers.Qwen2ForCausalLM.from_pretrained(path).eval()
  assert not reloaded.config.tie_word_embeddings
  ids, mask = hf_models.padded_batch(np.random.default_rng(4), 128, [6], 6)
  config, out = _run(path, input_ids=ids, attention_mask=mask)
  assert not config.llm.tie_embeddings
  ref = hf_models.to_numpy(reloaded(input_ids=torch.tensor(ids)).logits)
  assert np.abs(np.asarray(out) - ref).max() <= TOL
