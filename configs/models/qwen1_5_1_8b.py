"""Qwen1.5-1.8B LLM (the paper's grid)."""
import ml_collections
from _qwen1_5 import qwen1_5


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="llm", dtype="float32",
      llm=qwen1_5(hidden=2048, layers=24, heads=16, mlp=5504, vocab=151936, theta=1e6,
                  tied=False)))
