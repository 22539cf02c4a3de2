"""Model checkpoints on disk: our config (JSON) beside an orbax params tree."""
import json
import os

import ml_collections
import orbax.checkpoint as ocp


def save(path, config, params):
  """Writes `path/config.json` and `path/params` (orbax)."""
  path = os.path.abspath(path)
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.join(path, "params"), params, force=True)


def load_config(path):
  with open(os.path.join(os.path.abspath(path), "config.json")) as f:
    return ml_collections.ConfigDict(json.load(f))


def load(path, shardings=None):
  """-> (config, params); params placed with `shardings` (a matching tree) when given."""
  path = os.path.abspath(path)
  config = load_config(path)
  with ocp.StandardCheckpointer() as checkpointer:
    target = None
    if shardings is not None:
      import jax
      metadata = checkpointer.metadata(os.path.join(path, "params")).item_metadata.tree
      target = jax.tree.map(lambda m, s: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=s),
                            metadata, shardings)
    params = checkpointer.restore(os.path.join(path, "params"), target)
  return config, params
