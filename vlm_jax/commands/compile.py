"""Compile a step for a TPU slice without the slice: per-chip memory, fit, FLOPs, collectives.

`vlm-jax compile --config configs/train/paper.py:llm=qwen1_5_7b,budget=16,stage=2,stage1=run
--topology v5p-64` compiles the training step for the 32 chips of a v5p-64 with libtpu
(pip install -e '.[aot]') on this machine's CPU. `--search-microbatches` compiles it with
1, 2, 4, ... microbatches until it fits and reports the smallest count that does. Exit
status: 0 fits, 3 does not fit, 4 libtpu unavailable, 2 bad input.
"""
import json
import os
import sys

from vlm_jax import errors

EXIT_FITS, EXIT_DOES_NOT_FIT, EXIT_NO_LIBTPU = 0, 3, 4  # bad input: 2, as for every command
STEPS = ("train", "prefill", "decode")
GIB = 2 ** 30


def add_arguments(parser):
  parser.add_argument("--config", required=True,
                      help="training config file and its argument, e.g. configs/train/paper.py:"
                      "llm=qwen1_5_7b,budget=16,stage=2,stage1=unused (checkpoints are not read)")
  parser.add_argument("--topology", required=True,
                      help="TPU slice: v4-N, v5p-N (N cores: v5p-64 is 32 chips), v5e-N, v6e-N "
                      "(N chips)")
  parser.add_argument("--mesh", default="",
                      help="mesh axes, e.g. data=1,fsdp=16,tensor=2 (-1: the chips left; "
                      "default fsdp over every chip)")
  parser.add_argument("--step", choices=STEPS, default="train",
                      help="train: one optimizer step; prefill: the prompt pass of generation; "
                      "decode: one cached decode step")
  parser.add_argument("--batch", type=int, help="global batch (default: the config's batch_size)")
  parser.add_argument("--text-length", type=int,
                      help="prompt positions T (default: the bucket data.max_length pads to)")
  parser.add_argument("--question-length", type=int,
                      help="question tokens for QueCC's query pass (default 128)")
  parser.add_argument("--max-new-tokens", type=int,
                      help="prefill / decode: generated tokens the KV cache holds (default 128)")
  parser.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE",
                      help="override a config field, e.g. --set microbatches=4 (repeatable)")
  parser.add_argument("--search-microbatches", action="store_true",
                      help="train step: compile with 1, 2, 4, ... microbatches (gradient "
                      "accumulation) until it fits; report the smallest count that fits")
  parser.add_argument("--json", action="store_true", help="print the report as JSON")


def parse_mesh(text):
  """'data=1,fsdp=16' -> {'data': 1, 'fsdp': 16}."""
  axes = {}
  for item in filter(None, text.split(",")):
    name, sep, size = item.partition("=")
    if not sep or not size.strip().lstrip("-").isdigit():
      raise ValueError(f"--mesh item {item!r} is not of the form axis=size")
    axes[name.strip()] = int(size)
  return axes


def _gib(n):
  return f"{n / GIB:.2f} GiB" if n >= GIB / 10 else f"{n / 2 ** 20:.1f} MiB"


def describe(report, config_name):
  """The report as text lines."""
  from vlm_jax.aot.compiler import FLOPS_NOTE
  sizes, mesh = report.sizes, report.mesh
  shards = mesh["data"] * mesh["fsdp"]
  lines = [
      f"{report.step} step of {config_name}",
      f"on {report.topology}: {report.chips} x {report.device_kind}, {_gib(report.hbm_bytes)} "
      f"HBM each; mesh " + " ".join(f"{k}={v}" for k, v in mesh.items()),
      f"inputs: batch {sizes['batch']} ({sizes['batch'] // sizes['microbatches'] // shards} rows "
      f"per batch shard" + (f" in each of {sizes['microbatches']} microbatches" if
                            sizes["microbatches"] > 1 else "")
      + f"), text {sizes['text_length']}, question {sizes['question_length']}, "
      f"visual tokens {sizes['visual_tokens']}"
      + (f", max new tokens {sizes['max_new_tokens']}" if report.step != "train" else ""),
  ]
  if report.compiled:
    lines += [
        f"memory per chip: arguments {_gib(report.argument_bytes)}, outputs "
        f"{_gib(report.output_bytes)} ({_gib(report.alias_bytes)} aliased to arguments), "
        f"temporaries {_gib(report.temp_bytes)}, program {_gib(report.program_bytes)}",
        f"peak per chip {_gib(report.peak_bytes)} of {_gib(report.hbm_bytes)}: "
        + ("fits" if report.fits else "DOES NOT FIT"),
        f"FLOPs per chip: model {report.model_flops_per_chip:.3e} ({report.model_flops_basis}, "
        f"/ {report.chips} chips); XLA cost analysis {report.xla_flops_per_chip:.3e}",
        f"  note: {FLOPS_NOTE}",
        "collectives: " + ", ".join(f"{op} {n}" for op, n in report.collectives.items())
        + f"; Pallas kernel calls {report.kernel_calls}",
    ]
  else:
    needed = report.required_temp_bytes
    lines += [
        f"DOES NOT FIT: per chip at least {_gib(report.peak_bytes)} of {_gib(report.hbm_bytes)} "
        f"(arguments {_gib(report.sharded_argument_bytes)}"
        + (f" + temporaries {_gib(needed)}" if needed is not None else "") + ")",
        f"  compiler: {report.error.splitlines()[0]}",
    ]
  lines.append(f"compiled in {report.compile_seconds:.0f} s")
  return "\n".join(lines)


def describe_search(reports, config_name):
  """The microbatch search as text: a line per count tried, then the last report."""
  lines = [f"microbatches {r.sizes['microbatches']}: peak per chip "
           + ("" if r.compiled else "at least ") + f"{_gib(r.peak_bytes)}: "
           + ("fits" if r.fits else "does not fit") for r in reports]
  last = reports[-1]
  lines += ["", describe(last, config_name), ""]
  lines.append(f"smallest microbatch count that fits: {last.sizes['microbatches']} "
               f"(--set microbatches={last.sizes['microbatches']})" if last.fits else
               f"no microbatch count up to {last.sizes['microbatches']} fits")
  return "\n".join(lines)


def _search_json(reports):
  return {"microbatch_search": [
      {"microbatches": r.sizes["microbatches"], "fits": r.fits, "peak_bytes": r.peak_bytes}
      for r in reports]}


def run(args):
  # Compile-only TPU devices come from libtpu's topology description; the process itself
  # runs on the CPU, and must not open a local TPU another job may hold.
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  from vlm_jax import aot, configs, train
  try:
    # The topology, mesh, sizes and config are checked on the way to the compiler.
    with errors.user_input():
      mesh = parse_mesh(args.mesh)
      config = train.apply_overrides(configs.load(args.config), args.overrides)
      sizes = dict(batch=args.batch, text_length=args.text_length,
                   question_length=args.question_length)
      if args.search_microbatches:
        if args.step != "train":
          raise errors.BadValueError("--search-microbatches searches the train step's "
                                     f"microbatches, not --step {args.step}")
        reports = aot.search_microbatches(config, args.topology, mesh=mesh, **sizes)
      else:
        reports = [aot.compile_step(config, args.topology, step=args.step, mesh=mesh,
                                    max_new_tokens=args.max_new_tokens, **sizes)]
  except aot.LibtpuUnavailableError as e:
    print(f"vlm-jax compile: error: {e}", file=sys.stderr)
    return EXIT_NO_LIBTPU
  report = reports[-1]
  if args.json:
    search = _search_json(reports) if args.search_microbatches else {}
    print(json.dumps({"config": args.config, **search, **report.to_dict()}, indent=2))
  elif args.search_microbatches:
    print(describe_search(reports, args.config))
  else:
    print(describe(report, args.config))
  return EXIT_FITS if report.fits else EXIT_DOES_NOT_FIT
