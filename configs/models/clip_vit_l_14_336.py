"""CLIP ViT-L/14-336, the paper's LLaVA tower: 24x24 grid."""
import ml_collections
from _vision import tower


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="vision", dtype="float32",
      vision=tower("clip", image=336, patch=14, hidden=1024, layers=24, heads=16, mlp=4096)))
