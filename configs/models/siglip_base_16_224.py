"""SigLIP-base/16-224: 14x14 grid."""
import ml_collections
from _vision import tower


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="vision", dtype="float32",
      vision=tower("siglip", image=224, patch=16, hidden=768, layers=12, heads=12, mlp=3072)))
