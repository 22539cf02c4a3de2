"""A LLaVA-QueCC checkpoint in the paper's PyTorch layout converts to a VLM with the same logits.

The reference runs the pieces in PyTorch as the paper's model does: CLIP hidden states
(class token dropped), the LLM over the question for the query vector, QueCC,
mm_projector.1 / GELU / mm_projector.3, splice, the LLM.
"""
import json

import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import save_file

import hf_models
from torch_quecc import TorchQueCC, randomize
from vlm_jax import convert, models

KV_LAYERS = (2, 3)
GRID, KERNEL = 6, 3  # CLIP 24 px / 4 px patches -> 6 x 6; kernel 3 -> V = 4


@pytest.fixture(scope="module")
def paper_model(tmp_path_factory):
  root = tmp_path_factory.mktemp("paper")
  clip = hf_models.randomize(transformers.CLIPVisionModel(transformers.CLIPVisionConfig(
      hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=4,
      image_size=24, patch_size=4)))
  llm = hf_models.randomize(transformers.Qwen2ForCausalLM(
      hf_models.qwen2_config(tie_word_embeddings=False)), seed=1)
  quecc = TorchQueCC(32, 32 * len(KV_LAYERS), 64, GRID, KERNEL, heads=8).eval()
  randomize(quecc, seed=2)
  projector = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.GELU(),
                                  torch.nn.Linear(64, 64))
  randomize(projector, seed=3)
  mm_projector = torch.nn.Sequential(quecc, *projector)  # the paper's module order
  state = {**{f"model.{n}": t for n, t in llm.model.state_dict().items()},
           "lm_head.weight": llm.lm_head.weight,
           **{f"model.mm_projector.{n}": t for n, t in mm_projector.state_dict().items()}}
  hf = dict(llm.config.to_dict(), model_type="llava_qwen", architectures=["LlavaQwenForCausalLM"],
            mm_vision_tower=str(root / "clip"), mm_vision_select_layer=-2, mm_hidden_size=32,
            mm_projector_type="quecc_mlp2x_gelu")
  for fmt in ("bin", "safetensors"):
    (root / fmt).mkdir()
    (root / fmt / "config.json").write_text(json.dumps(hf))
    tensors = {n: t.detach().contiguous() for n, t in state.items()}
    if fmt == "bin":
      torch.save(tensors, root / fmt / "pytorch_model.bin")
    else:
      save_file(tensors, root / fmt / "model.safetensors")
  hf_models.save(clip, root / "clip")
  return root, clip, llm, quecc, projector


def _reference(clip, llm, quecc, projector, ids, mask, pixels, question_ids, question_mask):
  with torch.no_grad():
    hidden = clip(pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)),
                  output_hidden_states=True).hidden_states
    features = hidden[-2][:, 1:]
    multi = torch.cat([hidden[i][:, 1:] for i in KV_LAYERS], dim=-1)
    queries = []
    for q, m in zip(question_ids, question_mask):
      n = int(m.sum())
      queries.append(llm.model(input_ids=torch.tensor(q[None, :n])).last_hidden_state[0, -1])
    image = projector(quecc(features, multi, torch.stack(queries)))
    outputs = []
    for b, row in enumerate(ids):
      place = int(np.argmax(row == -200))
      embeds = llm.model.embed_tokens(torch.tensor(np.where(row == -200, 0, row)))
      embeds = torch.cat([embeds[:place], image[b], embeds[place + 1:]])
      outputs.append(llm(inputs_embeds=embeds[None]).logits[0].numpy())
    return np.stack(outputs)


@pytest.mark.parametrize("fmt", ["bin", "safetensors"])
def test_paper_checkpoint_logits(paper_model, fmt):
  root, *torch_parts = paper_model
  config, params = convert.from_hf(root / fmt, kv_layers=KV_LAYERS)
  assert config.compressor.name == "quecc" and config.compressor.budget == 4
  rng = np.random.default_rng(0)
  ids = rng.integers(1, 100, (2, 7)).astype(np.int32)
  ids[0, 2], ids[1, 5] = -200, -200
  mask = np.ones_like(ids)
  question_ids, question_mask = hf_models.padded_batch(rng, 100, [5, 3], 5)
  pixels = rng.normal(size=(2, 24, 24, 3)).astype(np.float32)
  got = models.build(config).apply(
      {"params": params}, jnp.asarray(ids), jnp.asarray(mask), jnp.asarray(pixels),
      jnp.asarray(question_ids), jnp.asarray(question_mask))
  want = _reference(*torch_parts, ids, mask, pixels, question_ids, question_mask)
  assert got.shape == want.shape == (2, 7 - 1 + 4, 128)
  np.testing.assert_allclose(np.asarray(got), want, atol=1e-4, rtol=0)


def test_wrong_kv_layers_named(paper_model):
  root, *_ = paper_model
  with pytest.raises(ValueError, match="k_proj.0.weight takes 2 layers"):
    convert.from_hf(root / "safetensors", kv_layers=(1, 2, 3))
