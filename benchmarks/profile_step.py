"""Where a training step's time goes, ours beside PyTorch's: op time by kind of op.

The step is train_step.py's (same config, batch, random data, PyTorch counterpart).
Ours runs under the JAX profiler: every executed XLA op (a thunk: a dot handed to
YNNPACK or Eigen, a fused loop, a copy) is an event with its duration; loop ops
(while, conditional, call) only contain others and are left out. Theirs runs under
torch.profiler: each aten op's self time. Ops are grouped into matmuls (attention's
included), copies and layout changes, gathers and scatters, and the rest (elementwise,
reductions, the optimizer); the table gives each group's time per step, summed over the
threads that ran ops, beside the step's wall time.

  python benchmarks/profile_step.py --config configs/train/tiny.py:size=l,budget=16,stage=2 \\
      --batch 32
"""
import argparse
import collections
import glob
import gzip
import json
import os
import re
import statistics
import sys
import tempfile
import time

import common
import train_step

GROUPS = ("matmul", "copy/layout", "gather/scatter", "other")
_HLO_OP = re.compile(r"^[a-z][a-z0-9_\-]*(\.\d+)?$")  # an XLA op's name, e.g. ynn_fusion.12
_XLA_CONTAINERS = ("while", "conditional", "call")
_XLA_MATMUL = ("ynn_fusion", "xnn_fusion", "onednn", "dot", "convolution")
_XLA_COPY = ("copy", "transpose", "bitcast", "concatenate", "pad", "slice", "dynamic-slice",
             "dynamic_slice", "dynamic-update-slice", "dynamic_update_slice", "broadcast",
             "wrapped_broadcast", "wrapped_transpose", "wrapped_concatenate", "wrapped_slice")
_TORCH_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm",
                 "aten::_scaled_dot_product", "aten::scaled_dot_product")
_TORCH_COPY = ("aten::copy_", "aten::clone", "aten::contiguous", "aten::cat", "aten::fill_",
               "aten::zero_", "aten::empty", "aten::pad", "aten::constant_pad_nd")


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=train_step.DEFAULT_CONFIG)
  train_step.add_override_argument(parser)
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--text-tokens", type=int, default=64)
  parser.add_argument("--repeats", type=int, default=3, help="profiled steps per side")
  parser.add_argument("--torch-threads", type=int,
                      help="torch intra-op threads (default: torch's own, all cores)")
  parser.add_argument("--out", help="write the numbers here as JSON")
  return parser.parse_args(argv)


def xla_group(name):
  """The group of an XLA op's name, or None for a loop op or a non-op event."""
  if not _HLO_OP.match(name):
    return None
  base = name.split(".")[0]
  if base in _XLA_CONTAINERS:
    return None
  if base.startswith(_XLA_MATMUL):
    return "matmul"
  if "gather" in base or "scatter" in base:
    return "gather/scatter"
  if base.startswith(_XLA_COPY):
    return "copy/layout"
  return "other"


def torch_group(name):
  if name.startswith(_TORCH_MATMUL):
    return "matmul"
  if any(word in name for word in ("gather", "scatter", "index", "embedding")):
    return "gather/scatter"
  if name.startswith(_TORCH_COPY) or name in ("aten::t", "aten::transpose", "aten::permute"):
    return "copy/layout"
  return "other"


def profile_ours(run, repeats):
  """-> ({group: seconds per step}, XLA ops per step, wall seconds per step)."""
  import jax
  with tempfile.TemporaryDirectory() as folder:
    start = time.perf_counter()
    with jax.profiler.trace(folder, create_perfetto_trace=True):
      for _ in range(repeats):
        run()
    wall = (time.perf_counter() - start) / repeats
    trace_file, = glob.glob(os.path.join(folder, "**", "*.trace.json.gz"), recursive=True)
    with gzip.open(trace_file) as f:
      events = json.load(f)["traceEvents"]
  seconds, ops = collections.Counter(), 0
  for event in events:
    group = xla_group(event.get("name", "")) if event.get("ph") == "X" else None
    if group:
      seconds[group] += event["dur"] * 1e-6 / repeats
      ops += 1
  return seconds, ops / repeats, wall


def profile_theirs(run, repeats):
  """-> ({group: seconds per step}, aten ops per step, wall seconds per step)."""
  import torch
  with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
    start = time.perf_counter()
    for _ in range(repeats):
      run()
    wall = (time.perf_counter() - start) / repeats
  seconds, ops = collections.Counter(), 0
  for op in profiler.key_averages():
    if op.key.startswith("aten::"):
      seconds[torch_group(op.key)] += op.self_cpu_time_total * 1e-6 / repeats
      ops += op.count
  return seconds, ops / repeats, wall


def main(argv=None):
  args = parse_args(argv)
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  import jax

  from vlm_jax import sharding

  config = train_step.load_config(args.config, args.overrides)
  ours_batch, theirs_batch = train_step.examples(config.model, args.batch, args.text_tokens)
  run_ours, _ = train_step.our_step(config, ours_batch, sharding.make_mesh(
      1, 1, 1, jax.devices()[:1]))
  run_theirs, _, torch_side = train_step.their_step(config, theirs_batch,
                                                    threads=args.torch_threads)
  if run_theirs is None:
    raise SystemExit(f"no PyTorch counterpart: {torch_side}")
  calls = {"ours": run_ours, "theirs": run_theirs}
  timed = common.time_interleaved(calls, max(args.repeats, 3))  # also the warm-up
  sides = {"ours": profile_ours(run_ours, args.repeats),
           "theirs": profile_theirs(run_theirs, args.repeats)}
  result = dict(benchmark="profile_step", config=args.config, overrides=args.overrides,
                batch=args.batch, text_tokens=args.text_tokens, device=common.jax_device(),
                torch_threads=torch_side["threads"], load_average=common.load_average(),
                step_s={name: statistics.median(s) for name, s in timed.items()},
                profiled={name: dict(groups=dict(groups), ops_per_step=ops, wall_s=wall)
                          for name, (groups, ops, wall) in sides.items()})
  report(result)
  common.write_json(args.out, result)
  return 0


def report(result):
  print(f"Training step profile, {train_step.config_label(result)}, batch {result['batch']}, "
        f"T = {result['text_tokens']} text tokens, on {result['device']}; torch on "
        f"{result['torch_threads']} threads. Op time per step by kind, summed over the "
        f"threads that ran ops (ms):\n")
  ours, theirs = result["profiled"]["ours"], result["profiled"]["theirs"]
  rows = [[group, f"{1e3 * ours['groups'].get(group, 0):.1f}",
           f"{1e3 * theirs['groups'].get(group, 0):.1f}"] for group in GROUPS]
  rows.append(["all ops", f"{1e3 * sum(ours['groups'].values()):.1f}",
               f"{1e3 * sum(theirs['groups'].values()):.1f}"])
  rows.append(["ops per step", f"{ours['ops_per_step']:.0f}", f"{theirs['ops_per_step']:.0f}"])
  rows.append(["step wall time, profiled", f"{1e3 * ours['wall_s']:.1f}",
               f"{1e3 * theirs['wall_s']:.1f}"])
  rows.append(["step wall time, unprofiled median", f"{1e3 * result['step_s']['ours']:.1f}",
               f"{1e3 * result['step_s']['theirs']:.1f}"])
  print(common.markdown_table(["", "ours", "theirs"], rows))


if __name__ == "__main__":
  sys.exit(main())
