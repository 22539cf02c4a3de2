"""A tiny SigLIP-style tower for CPU runs: 64 px images, 8 px patches, an 8x8 grid."""
import ml_collections
from _vision import tower


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="vision", dtype="float32",
      vision=tower("siglip", image=64, patch=8, hidden=32, layers=3, heads=4, mlp=64)))
