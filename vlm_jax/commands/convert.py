"""Convert a Hugging Face model folder into an orbax checkpoint plus our config.

The checkpoint keeps what feeding the model needs (vlm_jax.data.processor): the
source's tokenizer files under tokenizer/, its chat template, image preprocessing
and image token.
"""
from vlm_jax import errors
from vlm_jax.commands import comma_separated


def add_arguments(parser):
  parser.add_argument("src", help="local Hugging Face model folder (config.json + weights)")
  parser.add_argument("dst", help="output folder: config.json + params/ (orbax)")
  parser.add_argument("--vision-tower", help="the paper's LLaVA-QueCC: local CLIP folder")
  parser.add_argument("--kv-layers", type=comma_separated(int),
                      help="the paper's LLaVA-QueCC: e.g. 12,16,22,23")


def run(args):
  from vlm_jax import convert, models
  options = {}
  if args.vision_tower:
    options["vision_tower"] = args.vision_tower
  if args.kv_layers:
    options["kv_layers"] = tuple(args.kv_layers)
  # What it reads is the user's folder: an unsupported model or a tensor that is missing
  # or of the wrong shape is a problem of the input.
  with errors.user_input():
    config = convert.convert(args.src, args.dst, **options)
  print(f"{args.src} -> {args.dst}: {config.kind}, "
        f"{models.param_count(config) / 1e6:.2f}M params")
  return 0
