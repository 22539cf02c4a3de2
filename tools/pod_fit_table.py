"""The smallest v5p slice on which each paper-grid training step fits, as a Markdown table.

For each LLM x visual-token budget of the paper's grid (SigLIP so400m + QueCC, stage 2:
compressor, projector and LLM trained, global batch 128), tries the slices in order and
on each a few meshes (fsdp over every chip, then fsdp x tensor splits), compiling the
real training step with libtpu (vlm_jax.aot); the first that fits is the row. Every
compile is appended to --results (JSON lines) and reused on a rerun, so an interrupted
table resumes.

  python tools/pod_fit_table.py --results runs/pod_fit.jsonl > pod_fit.md
"""
import argparse
import json
import os
import sys

LLMS = ("qwen1_5_0_5b", "qwen1_5_1_8b", "qwen1_5_4b", "qwen1_5_7b", "qwen1_5_14b")
SLICES = ("v5p-8", "v5p-16", "v5p-32", "v5p-64", "v5p-128", "v5p-256")
GIB = 2 ** 30


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--llms", default=",".join(LLMS))
  parser.add_argument("--budgets", default="1,16,576", help="visual tokens V")
  parser.add_argument("--vision", default="siglip_so400m_14_384")
  parser.add_argument("--compressor", default="quecc")
  parser.add_argument("--stage", type=int, default=2)
  parser.add_argument("--slices", default=",".join(SLICES), help="tried in this order")
  parser.add_argument("--tensor", default="1,2,4",
                      help="tensor-parallel sizes tried on each slice, fsdp taking the rest")
  parser.add_argument("--microbatches", type=int, default=1,
                      help="gradient accumulation steps (the recipe's: 1)")
  parser.add_argument("--results", required=True, help="JSON lines of every compile (resumed)")
  return parser.parse_args(argv)


def config_spec(llm, budget, args):
  return (f"configs/train/paper.py:llm={llm},budget={budget},vision={args.vision},"
          f"compressor={args.compressor},stage={args.stage},stage1=unused")


def load_results(path):
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return {(r["config"], r["topology"], r["tensor"], r["microbatches"]): r for r in rows}


def compile_row(spec, topology, tensor, microbatches):
  """One compile -> a JSON-able dict (the report's fields and the key)."""
  from vlm_jax import aot, configs, train
  config = train.apply_overrides(configs.load(spec), [f"microbatches={microbatches}"])
  report = aot.compile_step(config, topology, mesh={"tensor": tensor})
  row = report.to_dict()
  row.pop("error")  # the peak and required figures keep what matters of it
  return {"config": spec, "tensor": tensor, "microbatches": microbatches, **row}


def smallest_fit(spec, args, results):
  """-> (the first fitting row or None, the smallest-peak row of each slice tried before)."""
  misses = []
  for topology in args.slices.split(","):
    tried = []
    for tensor in map(int, args.tensor.split(",")):
      key = (spec, topology, tensor, args.microbatches)
      if key not in results:
        try:
          results[key] = compile_row(spec, topology, tensor, args.microbatches)
        except ValueError as e:  # e.g. a batch that does not split over this mesh
          print(f"skip {spec} {topology} tensor={tensor}: {e}", file=sys.stderr)
          continue
        with open(args.results, "a") as f:
          f.write(json.dumps(results[key]) + "\n")
      row = results[key]
      print(f"{spec} {topology} mesh={row['mesh']}: {row['peak_bytes'] / GIB:.1f} GiB "
            f"{'fits' if row['fits'] else 'does not fit'} ({row['compile_seconds']:.0f} s)",
            file=sys.stderr, flush=True)
      if row["fits"]:
        return row, misses
      tried.append(row)
    if tried:
      misses.append(min(tried, key=lambda r: r["peak_bytes"]))
  return None, misses


def markdown(rows, args):
  lines = [
      f"Stage {args.stage} training step ({args.vision} + {args.compressor}, the recipe's "
      f"global batch in {args.microbatches} microbatch{'es' if args.microbatches > 1 else ''}): "
      f"the smallest slice and mesh that fit, per-chip memory from the compiled program.", "",
      "| LLM | V | slice (chips) | mesh data x fsdp x tensor | peak per chip (GiB) | of HBM | "
      "arguments (GiB) | temporaries (GiB) | next smaller slice needs (GiB) |",
      "|---|---:|---|---|---:|---:|---:|---:|---|"]
  for llm, budget, fit, misses in rows:
    smaller = "-"
    if misses:  # a program that failed to compile needed at least its figure
      miss = misses[-1]
      smaller = (f"{miss['topology']}: {'' if miss['compiled'] else '>= '}"
                 f"{miss['peak_bytes'] / GIB:.1f}")
    if fit is None:
      lines.append(f"| {llm} | {budget} | none up to {args.slices.split(',')[-1]} | | | | | | "
                   f"{smaller} |")
      continue
    mesh = " x ".join(str(fit["mesh"][a]) for a in ("data", "fsdp", "tensor"))
    lines.append(
        f"| {llm} | {budget} | {fit['topology']} ({fit['chips']}) | {mesh} | "
        f"{fit['peak_bytes'] / GIB:.1f} | {100 * fit['peak_bytes'] / fit['hbm_bytes']:.0f} % | "
        f"{fit['argument_bytes'] / GIB:.1f} | {fit['temp_bytes'] / GIB:.1f} | {smaller} |")
  return "\n".join(lines)


def main(argv=None):
  args = parse_args(argv)
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  results = load_results(args.results)
  rows = []
  for llm in args.llms.split(","):
    for budget in map(int, args.budgets.split(",")):
      fit, misses = smallest_fit(config_spec(llm, budget, args), args, results)
      rows.append((llm, budget, fit, misses))
  print(markdown(rows, args))


if __name__ == "__main__":
  main()
