"""Shared by the Qwen1.5 presets: values of the published config.json files."""
from vlm_jax.models import llm


def qwen1_5(hidden, layers, heads, mlp, vocab=151936, theta=1e6, tied=False):
  cfg = llm.default_config()
  cfg.update(family="qwen2", vocab_size=vocab, hidden_size=hidden, intermediate_size=mlp,
             num_layers=layers, num_heads=heads, num_kv_heads=heads, head_dim=hidden // heads,
             rope_theta=theta, rms_norm_eps=1e-6, qkv_bias=True, tie_embeddings=tied,
             max_position_embeddings=32768)
  return cfg
