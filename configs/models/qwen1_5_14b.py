"""Qwen1.5-14B LLM (the paper's grid)."""
import ml_collections
from _qwen1_5 import qwen1_5


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="llm", dtype="float32",
      llm=qwen1_5(hidden=5120, layers=40, heads=40, mlp=13696, vocab=152064, theta=1e6,
                  tied=False)))
