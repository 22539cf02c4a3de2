"""Time to first token of a VLM at each visual-token budget V, against its FLOPs ratio.

The jitted prefill (vision tower, compressor, QueCC's query pass, projector, LLM over
the prompt, first token; inputs already on the device) runs for every V in --budgets
and for the grid's full count g² (the same compressor at budget g²: the reference),
with random params, pixels and ids, timings interleaved across the budgets after a
warm-up, median of --repeats. Beside each: the speedup over g², the ratio of
`vlm_jax.flops` total FLOPs (at g² / at V) and their quotient, the fraction of the
predicted speedup realized.

  python benchmarks/prefill.py --out prefill.json
  python benchmarks/prefill.py --model vlm:llm=qwen1_5_1_8b,vision=siglip_so400m_14_384 \\
      --budgets 1,4,16,64,144,576 --dtype bfloat16 --out prefill.json
"""
import argparse
import functools
import statistics
import sys

import common

DEFAULT_MODEL = "vlm:llm=tiny_llm:size=s,vision=tiny_vision,compressor=quecc"


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default=DEFAULT_MODEL, help="VLM preset spec")
  parser.add_argument("--budgets", default="1,4,16", help="visual-token budgets V (squares)")
  parser.add_argument("--text-tokens", type=int, default=50, help="text tokens Q of the prompt")
  parser.add_argument("--batch", type=int, default=1)
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--repeats", type=int, default=10)
  parser.add_argument("--out", help="write the numbers here as JSON")
  return parser.parse_args(argv)


def budget_configs(config, budgets):
  """{V: config at budget V} for each V in budgets and for g²; and g²."""
  from vlm_jax.compressors import regions
  from vlm_jax.models import vision as vision_lib

  g = vision_lib.grid_size(config.vision)
  full = g * g
  if config.compressor.name == "identity" and set(budgets) - {full}:
    raise ValueError(f"the identity compressor keeps all {full} tokens; pick a compressor "
                     f"that takes a budget to time {budgets}")
  by_budget = {}
  for v in sorted(set(budgets) | {full}):
    at_v = config.copy_and_resolve_references()
    at_v.compressor.update(budget=v, grid=None)
    regions.grid_shape(at_v.compressor, g)  # raises for a budget the grid cannot take
    by_budget[v] = at_v
  return by_budget, full


def compressor_params(config, seed=1):
  """Random params of the compressor of vlm `config` alone (their shapes depend on V)."""
  import jax.numpy as jnp

  from vlm_jax import compressors
  from vlm_jax.models import vision as vision_lib

  module = compressors.build(config.compressor)
  g, d = vision_lib.grid_size(config.vision), config.vision.hidden_size
  features = jnp.zeros((1, g, g, d))
  multi = jnp.zeros((1, g, g, len(config.compressor.kv_layers) * d))
  query = jnp.zeros((1, config.llm.hidden_size))
  return common.random_like(
      lambda rng: module.init(rng, features, multi, query).get("params", {}), config.dtype, seed)


def prompt_inputs(config, text_tokens, batch, seed=0):
  """Prompts of one image placeholder and Q random text ids; the question = those ids."""
  import numpy as np

  from vlm_jax import flops

  rng = np.random.default_rng(seed)
  text = rng.integers(1, config.llm.vocab_size, (batch, text_tokens))
  ids = np.concatenate([np.full((batch, 1), config.image_token_id), text], axis=1)
  v = config.vision
  inputs = dict(input_ids=ids, attention_mask=np.ones_like(ids),
                pixels=rng.normal(size=(batch, v.image_size, v.image_size, v.num_channels)))
  if flops.COMPRESSOR_COUNTS.get(config.compressor.name).uses_query:
    inputs.update(question_ids=text, question_mask=np.ones_like(text))
  return inputs


def first_token(generator, params, inputs):
  """One blocking prefill (the prompt and the first new token)."""
  import jax
  return jax.block_until_ready(generator.prefill(params, inputs, jax.random.PRNGKey(0)))


def main(argv=None):
  args = parse_args(argv)
  budgets = common.parse_ints(args.budgets)
  if args.text_tokens < 1 or args.batch < 1:
    raise ValueError("need --text-tokens >= 1 and --batch >= 1")
  import jax

  from vlm_jax import flops
  from vlm_jax.generate import Generator

  config = common.model_config(args.model, args.dtype)
  if config.kind != "vlm":
    raise ValueError(f"--model must be a vlm spec, got a {config.kind} preset {args.model!r}")
  by_budget, full = budget_configs(config, budgets)
  # One tree for the vision tower, projector and LLM; the compressor's per budget.
  params = common.random_params(by_budget[full])
  calls, counts = {}, {}
  for v, at_v in by_budget.items():
    params_v = dict(params, compressor=compressor_params(at_v))
    generator = Generator(at_v, max_new_tokens=1, prompt_buckets=None)
    inputs = jax.device_put(generator.prepare(**prompt_inputs(at_v, args.text_tokens,
                                                              args.batch)))
    calls[v] = functools.partial(first_token, generator, params_v, inputs)
    counts[v] = flops.inference_flops(at_v, args.text_tokens)
  seconds = common.time_interleaved(calls, args.repeats)

  full_time, full_flops = statistics.median(seconds[full]), counts[full]["total"]
  rows = []
  for v in by_budget:
    t = statistics.median(seconds[v])
    speedup, flops_ratio = full_time / t, full_flops / counts[v]["total"]
    rows.append(dict(
        visual_tokens=v, seconds=t, all_seconds=seconds[v], speedup=speedup,
        flops_total=counts[v]["total"], flops_by_part={
            k: counts[v][k] for k in ("vision", "compressor", "query", "projector", "llm")},
        flops_ratio=flops_ratio, realized=speedup / flops_ratio,
        achieved_flops_per_s=args.batch * counts[v]["total"] / t))
  result = dict(
      benchmark="prefill", model=args.model, compressor=config.compressor.name,
      dtype=args.dtype, batch=args.batch, text_tokens=args.text_tokens, full_tokens=full,
      reference=f"{config.compressor.name} at V = g² = {full}", repeats=args.repeats,
      device=common.jax_device(), load_average=common.load_average(), rows=rows)
  print(f"Time to first token, {args.model} ({args.dtype}), batch {args.batch}, "
        f"Q = {args.text_tokens}, median of {args.repeats}, on {result['device']}.")
  print(f"Reference: {result['reference']}. FLOPs ratio: vlm_jax.flops total at g² / at V; "
        "realized = speedup / FLOPs ratio.\n")
  print(common.markdown_table(
      ["V", "TTFT (ms)", "speedup vs g²", "GFLOPs / query", "FLOPs ratio", "realized",
       "GFLOP/s"],
      [[r["visual_tokens"], f"{r['seconds'] * 1e3:.2f}", f"{r['speedup']:.2f}",
        f"{r['flops_total'] / 1e9:.4g}", f"{r['flops_ratio']:.2f}", f"{r['realized']:.2f}",
        f"{r['achieved_flops_per_s'] / 1e9:.3g}"] for r in rows]))
  common.write_json(args.out, result)
  return 0


if __name__ == "__main__":
  sys.exit(main())
