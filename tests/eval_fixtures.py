"""Tiny QueCC checkpoints and an eval config for the sharded and multi-process eval tests."""
import os

import flax.linen as nn
import jax

from vlm_jax import checkpoints, configs, models
from vlm_jax.data import config as data_config_lib
from vlm_jax.data import load_tokenizer
from vlm_jax.data import processor

QUESTIONS = 17  # odd: over two processes one share runs a step more than the other
# Buckets a few tokens apart, so that prompt lengths differ between batches and processes.
BUCKETS = "data.bucket_lengths=(24, 26, 28, 30, 32)"
MESH_2X2X2 = ["mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2"]
ONE_DEVICE = ["mesh.num_devices=1"]


def save_quecc(path, budget):
  """A random-init QueCC VLM (tiny_llm s, tiny tower) fed as the built-in data is.

  QueCC's params depend on the budget, so each budget is a checkpoint of its own. The
  end-of-sequence token's embedding (tied to the LM head) is scaled up so that answers
  end after varied numbers of tokens, as a trained model's do.
  """
  config = configs.preset(f"vlm:llm=tiny_llm:size=s,vision=tiny_vision,compressor=quecc,"
                          f"budget={budget}")
  config.processor = processor.from_data_config(
      data_config_lib.resolve(data_config_lib.default_config()))
  params = nn.unbox(models.init(config, jax.random.PRNGKey(budget)))
  embedding = params["llm"]["embed"]["embedding"]
  eos = load_tokenizer("builtin").eos_id
  params["llm"]["embed"]["embedding"] = embedding.at[eos].multiply(3.0)
  checkpoints.save(path, config, params)
  return str(path)


def eval_config():
  return configs.load(os.path.join(
      configs.CONFIG_DIR, "eval",
      f"builtin.py:benchmarks=easy_vqa,num_examples={QUESTIONS},batch_size=8"))
