"""Evaluation on the built-in tasks: `builtin.py:benchmarks=easy_vqa+ocr,num_examples=500`.

Tokenizer, chat template and image preprocessing are each checkpoint's own.
"""
import ml_collections

from vlm_jax.configs import parse_arg


def get_config(arg=None):
  arg = parse_arg(arg, benchmarks="easy_vqa", num_examples=500, batch_size=32)
  names = arg.benchmarks.split("+")
  return ml_collections.ConfigDict(dict(
      benchmarks=names,
      benchmark_args={name: dict(num_examples=arg.num_examples) for name in names},
      data=dict(batch_size=arg.batch_size, bucket_lengths=(32, 64, 128))))
