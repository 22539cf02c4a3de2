"""Export a checkpoint or training run to a Hugging Face model folder (the way back from convert).

An LLM becomes Qwen2ForCausalLM / LlamaForCausalLM, a VLM with the identity compressor
LlavaForConditionalGeneration (with its LlavaProcessor configs), a VLM with QueCC the
paper's LlavaQwenForCausalLM / LlavaLlamaForCausalLM beside its CLIP tower; safetensors,
streamed tensor by tensor and sharded above --max-shard-size, with the tokenizer files.
"""
import argparse
import re

UNITS = {"": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}


def byte_size(text):
  """An argparse type: '5GB', '500MB' or a byte count -> bytes (decimal units, as
  transformers' max_shard_size)."""
  match = re.fullmatch(r"(\d+)\s*([KMG]B)?", text.strip().upper())
  if not match:
    raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 5GB, 500MB or 1000000")
  return int(match.group(1)) * UNITS[match.group(2) or ""]


def budget(text):
  """An argparse type: a visual-token budget or 'all'."""
  if text == "all" or text.isdigit():
    return text if text == "all" else int(text)
  raise argparse.ArgumentTypeError(f"{text!r} is not a token budget (an integer) or 'all'")


def add_arguments(parser):
  parser.add_argument("ckpt", help="a model folder (vlm-jax convert, or a run's export), a "
                      "training workdir (its latest checkpoint) or DIR@STEP")
  parser.add_argument("dst", help="output folder, new or empty")
  parser.add_argument("--format", choices=("hf",), default="hf",
                      help="hf: Hugging Face safetensors, config.json and processor files")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--max-shard-size", type=byte_size, default="5GB",
                      help="shard the weights above this size (default 5GB)")
  parser.add_argument("--budget", type=budget,
                      help="QueCC: the budget to export. A single-budget checkpoint "
                      "exports its own (the default); a multi-budget one needs one of its "
                      "budgets, its kernel resized to that budget. 'all' is refused: the "
                      "paper's QueCC holds one kernel, so export each budget into its own "
                      "folder")
  parser.add_argument("--vision-tower-name",
                      help="QueCC: what the config's mm_vision_tower names, e.g. the Hub id the "
                      "exported vision_tower/ will have (default its absolute path)")


def run(args):
  from vlm_jax import errors, export
  with errors.user_input():
    written = export.to_hf(args.ckpt, args.dst, dtype=args.dtype,
                           max_shard_bytes=args.max_shard_size, budget=args.budget,
                           vision_tower=args.vision_tower_name)
  for folder, files in written.items():
    weights = [f for f in files if f.endswith(".safetensors")]
    others = [f for f in files if f not in weights]
    print(f"{args.ckpt} -> {'/'.join(filter(None, [args.dst.rstrip('/'), folder]))}: "
          f"{len(weights)} safetensors file(s), {', '.join(others)}")
  return 0
