"""Qwen1.5-7B LLM (the paper's grid)."""
import ml_collections
from _qwen1_5 import qwen1_5


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="llm", dtype="float32",
      llm=qwen1_5(hidden=4096, layers=32, heads=32, mlp=11008, vocab=151936, theta=1e6,
                  tied=False)))
