"""Tiny random `transformers` models saved to disk, and helpers to compare against them."""
import numpy as np
import torch


def randomize(model, seed=0, std=0.2):
  """Every parameter random (biases and norms included), so nothing matches by accident."""
  gen = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      noise = torch.randn(p.shape, generator=gen) * std
      p.copy_(noise + 1.0 if "norm" in name and name.endswith("weight") else noise)
  return model.eval()


def save(model, path):
  model.save_pretrained(path, safe_serialization=True)
  return str(path)


def qwen2_config(**overrides):
  from transformers import Qwen2Config
  return Qwen2Config(**dict(
      vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
      rope_theta=10000.0, tie_word_embeddings=True, rms_norm_eps=1e-6) | overrides)


def to_numpy(t):
  return t.detach().float().numpy()


def padded_batch(rng, vocab, lengths, total, low=1):
  """Right-padded ids (B, total) and mask, random ids in [low, vocab)."""
  ids = np.zeros((len(lengths), total), np.int64)
  mask = np.zeros_like(ids)
  for b, n in enumerate(lengths):
    ids[b, :n] = rng.integers(low, vocab, n)
    mask[b, :n] = 1
  return ids, mask
