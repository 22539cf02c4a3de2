"""The paper's benchmarks in the LLaVA-1.5 evaluation layout: `llava_1_5.py:root=playground/data/eval`.

Each benchmark is read from ROOT/<name> (see each reader's `layout`). Tokenizer, chat
template and image preprocessing are each checkpoint's own (`vlm-jax eval --set
data.template=...` overrides one). dtype: params and compute (float32 | bfloat16); the
mesh is fsdp over every device unless `--set mesh.KEY=...` (vlm_jax.evaluate.harness).
"""
import os

import ml_collections

from vlm_jax.configs import one_of, parse_arg

FOLDERS = {"gqa": "gqa", "mmbench": "mmbench", "mme": "MME", "pope": "pope",
           "scienceqa_img": "scienceqa", "seed": "seed_bench", "vizwiz": "vizwiz",
           "vqav2": "vqav2", "textvqa": "textvqa"}


def get_config(arg=None):
  arg = parse_arg(arg, root="playground/data/eval", benchmarks="+".join(FOLDERS),
                  batch_size=16, dtype="float32")
  names = [one_of("benchmark", name, FOLDERS) for name in arg.benchmarks.split("+")]
  return ml_collections.ConfigDict(dict(
      benchmarks=names,
      benchmark_args={n: dict(root=os.path.join(arg.root, FOLDERS[n])) for n in names},
      data=dict(batch_size=arg.batch_size, bucket_lengths=(64, 128, 256, 512, 1024, 2048)),
      dtype=arg.dtype))
