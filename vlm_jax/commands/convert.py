"""Convert a Hugging Face model folder into an orbax checkpoint plus our config."""


def add_arguments(parser):
  parser.add_argument("src", help="local Hugging Face model folder (config.json + weights)")
  parser.add_argument("dst", help="output folder: config.json + params/ (orbax)")
  parser.add_argument("--vision-tower", help="the paper's LLaVA-QueCC: local CLIP folder")
  parser.add_argument("--kv-layers", help="the paper's LLaVA-QueCC: e.g. 12,16,22,23")


def run(args):
  from vlm_jax import checkpoints, convert, models
  options = {}
  if args.vision_tower:
    options["vision_tower"] = args.vision_tower
  if args.kv_layers:
    options["kv_layers"] = tuple(int(i) for i in args.kv_layers.split(","))
  config, params = convert.from_hf(args.src, **options)
  checkpoints.save(args.dst, config, params)
  print(f"{args.src} -> {args.dst}: {config.kind}, "
        f"{models.param_count(config) / 1e6:.2f}M params")
  return 0
