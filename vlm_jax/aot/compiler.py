"""Compile a step for a TPU slice that is not there: per-chip memory, fit, FLOPs, collectives.

XLA's TPU compiler (libtpu) compiles the real SPMD program for the slice's chips and
plans its memory: `memory_analysis()` gives each chip's arguments, outputs and
temporaries. A program that cannot fit fails to compile with RESOURCE_EXHAUSTED and
the temporaries it needed; that is reported as not fitting, with the figure.
"""
import dataclasses
import re
import time

import jax
import numpy as np

from vlm_jax import sharding
from vlm_jax.aot import programs
from vlm_jax.aot import topology as topology_lib
from vlm_jax.data.batching import bucket_length
from vlm_jax.train import config as config_lib

DEFAULT_MESH = {"data": 1, "fsdp": -1, "tensor": 1}  # fsdp over every chip
DEFAULT_QUESTION_LENGTH = 128  # a question alone is short; bucketed like the data pipeline does
DEFAULT_MAX_NEW_TOKENS = 128
COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
_COLLECTIVE_OP = re.compile(r"\b(" + "|".join(COLLECTIVES) + r")(?:-start)?\(")
KERNEL_CALL = 'custom_call_target="tpu_custom_call"'  # a Pallas (Mosaic) kernel, e.g. splash
_OUT_OF_MEMORY = re.compile(r"required for HLO temporaries \(([\d.]+)([KMGTP]?)\) exceeds "
                            r"available HBM \(([\d.]+)([KMGTP]?)\)")
_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40, "P": 2 ** 50}
FLOPS_NOTE = ("XLA's cost analysis counts each while-loop body once (the scanned layers, the "
              "microbatch scan, XLA's windowed einsums), so it undercounts a scanned model "
              "many times over; the model count is vlm_jax.flops, without remat recompute")


@dataclasses.dataclass
class CompileReport:
  """One compiled step; byte and FLOP figures are per chip unless named otherwise."""
  step: str  # train | prefill | decode
  topology: str  # e.g. v5p-64
  device_kind: str
  chips: int
  mesh: dict  # {"data": ..., "fsdp": ..., "tensor": ...}
  sizes: dict  # programs.Sizes fields and visual_tokens
  hbm_bytes: int
  compiled: bool  # False: the compiler ran out of HBM
  fits: bool
  # compiled: arguments + outputs - aliased + temporaries + program; otherwise the sharded
  # arguments + the temporaries the compiler asked for (a lower bound).
  peak_bytes: int
  sharded_argument_bytes: int  # from the arguments' shardings: shard shapes x item sizes
  replicated_argument_bytes: int  # the same arguments whole, as on one device
  argument_bytes: int = None  # the compiler's figures (compiled programs only)
  output_bytes: int = None
  alias_bytes: int = None
  temp_bytes: int = None
  program_bytes: int = None
  required_temp_bytes: int = None  # out of memory: the temporaries the compiler needed
  compiler_hbm_bytes: int = None  # out of memory: the HBM the compiler had
  xla_flops_per_chip: float = None
  model_flops: float = 0.0  # the whole step over the slice
  model_flops_per_chip: float = 0.0
  model_flops_basis: str = ""
  collectives: dict = None  # op -> count in the compiled program
  kernel_calls: int = None  # Pallas kernel calls in the compiled program's text
  error: str = None  # the compiler's out-of-memory message
  compile_seconds: float = 0.0

  def to_dict(self):
    return dataclasses.asdict(self)


def resolve_sizes(config, step, batch=None, text_length=None, question_length=None,
                  max_new_tokens=None):
  """programs.Sizes from the arguments, defaulting to the config's batch and data lengths.

  text_length: the longest bucket data.max_length pads to; question_length: 128 (bucketed);
  microbatches: the config's, for training.
  """
  data = config.data
  text = text_length or bucket_length(data.max_length, data.bucket_lengths)
  question = question_length or bucket_length(min(DEFAULT_QUESTION_LENGTH, text),
                                              data.bucket_lengths)
  sizes = programs.Sizes(
      batch=batch or config.batch_size, text_length=text, question_length=question,
      max_new_tokens=max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
      microbatches=config.microbatches if step == "train" else 1)
  for name, value in dataclasses.asdict(sizes).items():
    if value < 1:
      raise ValueError(f"{name} must be >= 1, got {value}")
  if sizes.text_length < 2:
    raise ValueError(f"text_length must hold the image placeholder and a token, "
                     f"got {sizes.text_length}")
  return sizes


def make_mesh(mesh_axes, devices):
  """A (data, fsdp, tensor) mesh from {axis: size} over DEFAULT_MESH (-1: the chips left)."""
  unknown = sorted(set(mesh_axes) - set(sharding.MESH_AXES))
  if unknown:
    raise ValueError(f"unknown mesh axes {unknown}; known: {list(sharding.MESH_AXES)}")
  axes = {**DEFAULT_MESH, **mesh_axes}
  if "fsdp" not in mesh_axes and -1 in mesh_axes.values():
    axes["fsdp"] = 1  # another axis takes the chips left
  return sharding.make_mesh(axes["data"], axes["fsdp"], axes["tensor"], devices)


def argument_bytes(args):
  """(per-chip bytes, whole bytes) of abstract arguments carrying shardings."""
  sharded = whole = 0
  for x in jax.tree.leaves(args):
    itemsize = np.dtype(x.dtype).itemsize
    sharded += int(np.prod(x.sharding.shard_shape(x.shape))) * itemsize
    whole += int(np.prod(x.shape)) * itemsize
  return sharded, whole


def count_collectives(hlo_text):
  """{op: count} of the collective ops (synchronous or -start) in compiled HLO text."""
  found = _COLLECTIVE_OP.findall(hlo_text)
  return {op: found.count(op) for op in COLLECTIVES}


def parse_out_of_memory(message):
  """(temporaries needed, HBM available) in bytes from XLA's message, or (None, None)."""
  match = _OUT_OF_MEMORY.search(message)
  if not match:
    return None, None
  needed, needed_unit, available, available_unit = match.groups()
  return (int(float(needed) * _UNITS[needed_unit]),
          int(float(available) * _UNITS[available_unit]))


def compile_step(config, topology, *, step="train", mesh=None, batch=None, text_length=None,
                 question_length=None, max_new_tokens=None):
  """Compiles `step` of training config `config` for the TPU slice `topology` -> CompileReport.

  mesh: {axis: size} for data / fsdp / tensor (default: fsdp over every chip); batch:
  global (default config.batch_size). Raises topology.LibtpuUnavailableError without
  libtpu, ValueError for a bad slice, mesh or batch; a step that does not fit is a report
  with fits=False, not an error.
  """
  config = config_lib.resolve(config)
  tpu_slice = topology_lib.parse_slice(topology)
  build = programs.PROGRAMS.get(step)
  sizes = resolve_sizes(config, step, batch, text_length, question_length, max_new_tokens)
  devices = topology_lib.devices(tpu_slice)
  device_mesh = make_mesh(dict(mesh or {}), devices)
  sharding.check_batch_splits(sizes.batch, sizes.microbatches, device_mesh)
  program = build(config, sizes, device_mesh)
  with sharding.activate(device_mesh):
    lowered = program.jitted.lower(*program.args)
  sharded, whole = argument_bytes(program.args)
  report = CompileReport(
      step=step, topology=tpu_slice.name, device_kind=devices[0].device_kind,
      chips=tpu_slice.chips, mesh=dict(device_mesh.shape),
      sizes={**dataclasses.asdict(sizes), "visual_tokens": programs.visual_tokens(config.model)},
      hbm_bytes=tpu_slice.hbm_bytes, compiled=False, fits=False, peak_bytes=sharded,
      sharded_argument_bytes=sharded, replicated_argument_bytes=whole,
      model_flops=program.model_flops, model_flops_per_chip=program.model_flops / tpu_slice.chips,
      model_flops_basis=program.model_flops_basis)
  start = time.perf_counter()
  try:
    compiled = lowered.compile()
  except jax.errors.JaxRuntimeError as e:
    if "RESOURCE_EXHAUSTED" not in str(e):
      raise
    report.compile_seconds = time.perf_counter() - start
    report.error = str(e).strip()
    report.required_temp_bytes, report.compiler_hbm_bytes = parse_out_of_memory(report.error)
    report.peak_bytes = sharded + (report.required_temp_bytes or 0)
    return report
  report.compile_seconds = time.perf_counter() - start
  memory = compiled.memory_analysis()
  report.compiled = True
  report.argument_bytes = memory.argument_size_in_bytes
  report.output_bytes = memory.output_size_in_bytes
  report.alias_bytes = memory.alias_size_in_bytes
  report.temp_bytes = memory.temp_size_in_bytes
  report.program_bytes = memory.generated_code_size_in_bytes
  report.peak_bytes = (report.argument_bytes + report.output_bytes - report.alias_bytes
                       + report.temp_bytes + report.program_bytes)
  report.fits = report.peak_bytes <= report.hbm_bytes
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  report.xla_flops_per_chip = float(cost.get("flops", 0.0)) if cost else None
  text = compiled.as_text()
  report.collectives = count_collectives(text)
  report.kernel_calls = text.count(KERNEL_CALL)
  return report


def search_microbatches(config, topology, *, mesh=None, batch=None, **sizes):
  """Compiles the train step with 1, 2, 4, ... microbatches until it fits -> the reports.

  The last report is of the smallest count that fits, unless none does: the counts stop
  where a microbatch would no longer split over the mesh's batch shards (data x fsdp).
  sizes: compile_step's text_length, question_length.
  """
  config = config_lib.resolve(config)
  batch = batch or config.batch_size
  device_mesh = make_mesh(dict(mesh or {}), topology_lib.devices(
      topology_lib.parse_slice(topology)))
  sharding.check_batch_splits(batch, 1, device_mesh)
  shards = device_mesh.shape["data"] * device_mesh.shape["fsdp"]
  reports, microbatches = [], 1
  while batch % microbatches == 0 and batch // microbatches % shards == 0:
    config.microbatches = microbatches
    reports.append(compile_step(config, topology, mesh=mesh, batch=batch, **sizes))
    if reports[-1].fits:
      break
    microbatches *= 2
  return reports
