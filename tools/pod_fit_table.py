"""The smallest v5p slice on which each paper-grid training step fits, and the largest
per-chip batch that fits there, as a Markdown table.

For each LLM x visual-token budget of the paper's grid (SigLIP so400m + QueCC, stage 2:
compressor, projector and LLM trained, global batch 128), tries the slices in order and
on each a few meshes (fsdp over every chip, then fsdp x tensor splits), compiling the
real training step with libtpu (vlm_jax.aot); the first that fits is the row. On its
slice and mesh, the per-chip batch then grows in steps of ROW_STEP rows to the largest
that fits (`largest_rows`). Every compile is appended to --results (JSON lines) and
reused on a rerun, so an interrupted table resumes.

  python tools/pod_fit_table.py --results runs/pod_fit.jsonl > pod_fit.md
"""
import argparse
import json
import os
import sys

LLMS = ("qwen1_5_0_5b", "qwen1_5_1_8b", "qwen1_5_4b", "qwen1_5_7b", "qwen1_5_14b")
SLICES = ("v5p-8", "v5p-16", "v5p-32", "v5p-64", "v5p-128", "v5p-256")
GIB = 2 ** 30
ROW_STEP = 4  # the per-chip batch search's resolution, in rows


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
  parser.add_argument("--batch", type=int, default=128, help="global batch (the recipe's: 128)")
  parser.add_argument("--search-compiles", type=int, default=8,
                      help="compiles the per-chip batch search may spend per row; the table "
                      "gives the bracket it reached")
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
  return {_key(r["config"], r["topology"], r["tensor"], r["microbatches"], r["sizes"]["batch"]): r
          for r in rows}


def _key(spec, topology, tensor, microbatches, batch):
  return spec, topology, tensor, microbatches, batch


def compile_row(spec, topology, tensor, microbatches, batch):
  """One compile -> a JSON-able dict (the report's fields and the key)."""
  from vlm_jax import aot, configs, train
  config = train.apply_overrides(configs.load(spec), [f"microbatches={microbatches}"])
  report = aot.compile_step(config, topology, mesh={"tensor": tensor}, batch=batch)
  row = report.to_dict()
  row.pop("error")  # the peak and required figures keep what matters of it
  return {"config": spec, "tensor": tensor, "microbatches": microbatches, **row}


def cached_compile(spec, topology, tensor, batch, args, results):
  """compile_row, or the row --results already holds; None for a mesh the batch cannot use."""
  key = _key(spec, topology, tensor, args.microbatches, batch)
  if key not in results:
    try:
      results[key] = compile_row(spec, topology, tensor, args.microbatches, batch)
    except ValueError as e:  # e.g. a batch that does not split over this mesh
      print(f"skip {spec} {topology} tensor={tensor} batch={batch}: {e}", file=sys.stderr)
      return None
    with open(args.results, "a") as f:
      f.write(json.dumps(results[key]) + "\n")
  row = results[key]
  print(f"{spec} {topology} mesh={row['mesh']} batch={batch}: {row['peak_bytes'] / GIB:.1f} GiB "
        f"{'fits' if row['fits'] else 'does not fit'} ({row['compile_seconds']:.0f} s)",
        file=sys.stderr, flush=True)
  return row


def smallest_fit(spec, args, results):
  """-> (the first fitting row or None, the smallest-peak row of each slice tried before)."""
  misses = []
  for topology in args.slices.split(","):
    tried = []
    for tensor in map(int, args.tensor.split(",")):
      row = cached_compile(spec, topology, tensor, args.batch, args, results)
      if row is None:
        continue
      if row["fits"]:
        return row, misses
      tried.append(row)
    if tried:
      misses.append(min(tried, key=lambda r: r["peak_bytes"]))
  return None, misses


def rows_per_chip(row):
  mesh = row["mesh"]
  return row["sizes"]["batch"] // (mesh["data"] * mesh["fsdp"])


def temporaries(row):
  """The temporaries a compile used, or those a failed one asked for (None if unknown)."""
  return row["temp_bytes"] if row["compiled"] else row["required_temp_bytes"]


def largest_rows(fit, compile_rows, max_compiles):
  """The largest per-chip batch, a multiple of ROW_STEP rows, that fits beside `fit`.

  fit: a fitting row; compile_rows(rows) -> the row compiled at that per-chip batch on
  fit's slice and mesh. Temporaries grow about linearly with the rows: each probe is where
  the line through the last two compiles (a failed compile reports the temporaries it
  needed) meets the HBM left beside the arguments and code, clamped inside the bracket of
  known fit and known miss. -> (the largest fitting row found, the smallest missing row
  found or None): ROW_STEP rows apart unless the search stopped after `max_compiles`.
  """
  room = fit["hbm_bytes"] - (fit["peak_bytes"] - fit["temp_bytes"])
  best, miss = fit, None
  points = [(rows_per_chip(fit), fit["temp_bytes"])]
  for _ in range(max_compiles):
    low = rows_per_chip(best)
    high = rows_per_chip(miss) if miss else None
    if high is not None and high - low <= ROW_STEP:
      break
    if len(points) < 2:  # temporaries in proportion to rows: an underestimate of the room
      predicted = points[0][0] * room / points[0][1]
    else:
      (r0, t0), (r1, t1) = points[-2:]
      slope = (t1 - t0) / (r1 - r0)
      predicted = r1 + (room - t1) / slope if slope > 0 else float("inf")
    rows = max(low + ROW_STEP, int(min(predicted, 1e6)) // ROW_STEP * ROW_STEP)
    if high is not None:
      rows = min(rows, high - ROW_STEP)
    row = compile_rows(rows)
    if row["fits"]:
      best = row
    else:
      miss = row
    if temporaries(row) is not None and rows not in (r for r, _ in points):
      points.append((rows, temporaries(row)))
  return best, miss


def markdown(rows, args):
  lines = [
      f"Stage {args.stage} training step ({args.vision} + {args.compressor}, global batch "
      f"{args.batch} in {args.microbatches} microbatch{'es' if args.microbatches > 1 else ''}): "
      f"the smallest slice and mesh that fit, per-chip memory from the compiled program; "
      f"on that slice and mesh, the largest per-chip batch found to fit, the smallest found "
      f"not to (the search's resolution: {ROW_STEP} rows), and the fitting one's peak.", "",
      "| LLM | V | slice (chips) | mesh data x fsdp x tensor | peak per chip (GiB) | of HBM | "
      "arguments (GiB) | temporaries (GiB) | next smaller slice needs (GiB) | "
      "batch per chip: fits (rows) | does not fit (rows) | its peak (GiB) |",
      "|---|---:|---|---|---:|---:|---:|---:|---|---:|---:|---:|"]
  for llm, budget, fit, misses, (largest, over) in rows:
    smaller = "-"
    if misses:  # a program that failed to compile needed at least its figure
      miss = misses[-1]
      smaller = (f"{miss['topology']}: {'' if miss['compiled'] else '>= '}"
                 f"{miss['peak_bytes'] / GIB:.1f}")
    if fit is None:
      lines.append(f"| {llm} | {budget} | none up to {args.slices.split(',')[-1]} | | | | | | "
                   f"{smaller} | | | |")
      continue
    mesh = " x ".join(str(fit["mesh"][a]) for a in ("data", "fsdp", "tensor"))
    lines.append(
        f"| {llm} | {budget} | {fit['topology']} ({fit['chips']}) | {mesh} | "
        f"{fit['peak_bytes'] / GIB:.1f} | {100 * fit['peak_bytes'] / fit['hbm_bytes']:.0f} % | "
        f"{fit['argument_bytes'] / GIB:.1f} | {fit['temp_bytes'] / GIB:.1f} | {smaller} | "
        f"{rows_per_chip(largest)} | {rows_per_chip(over) if over else 'not found'} | "
        f"{largest['peak_bytes'] / GIB:.1f} |")
  return "\n".join(lines)


def main(argv=None):
  args = parse_args(argv)
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  results = load_results(args.results)
  rows = []
  for llm in args.llms.split(","):
    for budget in map(int, args.budgets.split(",")):
      spec = config_spec(llm, budget, args)
      fit, misses = smallest_fit(spec, args, results)
      largest = (None, None)
      if fit is not None:
        shards = fit["mesh"]["data"] * fit["mesh"]["fsdp"]
        largest = largest_rows(fit, lambda rows: cached_compile(
            spec, fit["topology"], fit["tensor"], rows * shards, args, results),
            args.search_compiles)
      rows.append((llm, budget, fit, misses, largest))
  print(markdown(rows, args))


if __name__ == "__main__":
  main()
