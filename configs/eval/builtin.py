"""Evaluation on the built-in tasks: `builtin.py:benchmarks=easy_vqa+ocr,num_examples=500`.

Tokenizer, chat template and image preprocessing are each checkpoint's own. dtype:
params and compute (float32 | bfloat16); the mesh is fsdp over every device unless
`--set mesh.data=2 --set mesh.fsdp=2 --set mesh.tensor=2` (vlm_jax.evaluate.harness).
answer_loss=1: rows add the reference answers' token cross-entropy (answer_ce);
shuffle_images=1: each question is asked about another question's image (rows: images
"shuffled"), the control that tells whether a model uses the image.
"""
import ml_collections

from vlm_jax.configs import one_of, parse_arg

SWITCH = (0, 1)


def get_config(arg=None):
  arg = parse_arg(arg, benchmarks="easy_vqa", num_examples=500, batch_size=32, dtype="float32",
                  answer_loss=0, shuffle_images=0)
  names = arg.benchmarks.split("+")
  return ml_collections.ConfigDict(dict(
      benchmarks=names,
      benchmark_args={name: dict(num_examples=arg.num_examples) for name in names},
      data=dict(batch_size=arg.batch_size, bucket_lengths=(32, 64, 128)), dtype=arg.dtype,
      answer_loss=bool(one_of("answer_loss", arg.answer_loss, SWITCH)),
      shuffle_images=bool(one_of("shuffle_images", arg.shuffle_images, SWITCH))))
