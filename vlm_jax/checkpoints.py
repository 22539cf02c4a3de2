"""Model checkpoints on disk: our config (JSON) beside an orbax params tree."""
import json
import os

import ml_collections
import orbax.checkpoint as ocp

TOKENIZER_DIR = "tokenizer"  # a converted checkpoint's own tokenizer and processor files


def save(path, config, params):
  """Writes `path/config.json` and `path/params` (orbax)."""
  path = os.path.abspath(path)
  os.makedirs(path, exist_ok=True)
  with open(os.path.join(path, "config.json"), "w") as f:
    f.write(config.to_json(indent=2))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(os.path.join(path, "params"), params, force=True)


def load_config(path):
  """The model config of checkpoint `path`; its processor's tokenizer, when the checkpoint
  holds it, as a path."""
  path = os.path.abspath(path)
  config_path = os.path.join(path, "config.json")
  if not os.path.exists(config_path):
    raise FileNotFoundError(f"{path} is not a model checkpoint: it has no config.json")
  with open(config_path) as f:
    config = ml_collections.ConfigDict(json.load(f))
  tokenizer = config.get("processor", {}).get("tokenizer")
  if tokenizer and os.path.isdir(os.path.join(path, tokenizer)):
    config.processor.tokenizer = os.path.join(path, tokenizer)
  return config


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
