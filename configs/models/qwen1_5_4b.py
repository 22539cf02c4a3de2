"""Qwen1.5-4B LLM (the paper's grid)."""
import ml_collections
from _qwen1_5 import qwen1_5


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="llm", dtype="float32",
      llm=qwen1_5(hidden=2560, layers=40, heads=20, mlp=6912, vocab=151936, theta=5e6,
                  tied=False)))
