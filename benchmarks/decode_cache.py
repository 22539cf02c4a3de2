"""Per-token decode time early vs late in a fixed-size KV cache.

Times the jitted single decode step of a tiny LLM writing cache slot 20 and slot
200 of a 256-slot cache (interleaved repetitions, median). With a fixed-size
cache every step does the same work, so the ratio should stay near 1.

  python benchmarks/decode_cache.py --out decode_cache.json
"""
import argparse
import json
import statistics
import sys
import time


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="tiny_llm:size=s", help="LLM preset")
  parser.add_argument("--batch", type=int, default=4)
  parser.add_argument("--prompt-length", type=int, default=16)
  parser.add_argument("--cache-length", type=int, default=256)
  parser.add_argument("--early", type=int, default=20, help="cache slot of the early step")
  parser.add_argument("--late", type=int, default=200, help="cache slot of the late step")
  parser.add_argument("--repeats", type=int, default=50)
  parser.add_argument("--max-ratio", type=float, default=1.5,
                      help="exit 1 when late / early exceeds this")
  parser.add_argument("--out", help="write the numbers here as JSON")
  return parser.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  if not args.prompt_length <= args.early < args.late < args.cache_length:
    raise ValueError("need prompt_length <= early < late < cache_length")
  import jax
  import jax.numpy as jnp
  import numpy as np

  from vlm_jax import configs, models
  from vlm_jax.generate import Generator

  config = configs.preset(args.model)
  params = jax.jit(lambda rng: models.init(config, rng))(jax.random.PRNGKey(0))
  max_new_tokens = args.cache_length - args.prompt_length
  generator = Generator(config, max_new_tokens=max_new_tokens, prompt_buckets=None)
  ids = np.random.default_rng(0).integers(1, config.llm.vocab_size,
                                          (args.batch, args.prompt_length))
  state = generator.prefill(params, generator.prepare(ids, np.ones_like(ids)),
                            jax.random.PRNGKey(0))
  # A step writes slot prompt_length + step - 1.
  at_slot = {slot: state._replace(step=jnp.int32(slot - args.prompt_length + 1))
             for slot in (args.early, args.late)}
  seconds = {slot: [] for slot in at_slot}
  for _ in range(args.repeats + 1):  # the first round compiles and warms up
    for slot, slot_state in at_slot.items():
      fresh = jax.block_until_ready(jax.tree.map(jnp.copy, slot_state))  # step donates it
      start = time.perf_counter()
      jax.block_until_ready(generator.step(params, fresh))
      seconds[slot].append(time.perf_counter() - start)
  early, late = (statistics.median(seconds[s][1:]) for s in (args.early, args.late))
  result = dict(
      model=args.model, batch=args.batch, cache_length=args.cache_length,
      device=str(jax.devices()[0]), repeats=args.repeats, early_slot=args.early,
      late_slot=args.late, early_step_ms=early * 1e3, late_step_ms=late * 1e3,
      ratio=late / early, compiled_steps=generator.step._cache_size())
  print(f"decode step at slot {args.early}: {early * 1e3:.3f} ms, at slot {args.late}: "
        f"{late * 1e3:.3f} ms, ratio {late / early:.3f} "
        f"({result['compiled_steps']} compiled step program)")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(result, f, indent=2)
  return 0 if late / early <= args.max_ratio else 1


if __name__ == "__main__":
  sys.exit(main())
