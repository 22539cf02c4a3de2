"""SigLIP-so400m/14-384: 27x27 grid."""
import ml_collections
from _vision import tower


def get_config():
  return ml_collections.ConfigDict(dict(
      kind="vision", dtype="float32",
      vision=tower("siglip", image=384, patch=14, hidden=1152, layers=27, heads=16, mlp=4304)))
