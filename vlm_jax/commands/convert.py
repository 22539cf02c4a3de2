"""Convert a Hugging Face model folder into an orbax checkpoint plus our config."""


def add_arguments(parser):
  parser.add_argument("src", help="local Hugging Face model folder (config.json + weights)")
  parser.add_argument("dst", help="output folder: config.json + params/ (orbax)")


def run(args):
  from vlm_jax import checkpoints, convert, models
  config, params = convert.from_hf(args.src)
  checkpoints.save(args.dst, config, params)
  print(f"{args.src} -> {args.dst}: {config.kind}, "
        f"{models.param_count(config) / 1e6:.2f}M params")
  return 0
