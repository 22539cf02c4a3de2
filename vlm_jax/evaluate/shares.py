"""Evaluation over several processes: each answers its share, all step together, and the
answers meet on every process.

Every process runs each generation step (one SPMD program over the whole mesh), so a
process whose share is done feeds idle rows until no process has a batch left; what each
process found is then gathered as JSON. On one process all of this is a no-op.
"""
import itertools
import json

import jax
import numpy as np
from jax.experimental import multihost_utils

from vlm_jax import errors, sharding


def check_rows_split(mesh):
  """Raises unless every process holds a block of the batch rows of its own, in process
  order: what joining each process's rows into one global batch needs."""
  shards, count = sharding.batch_shards(mesh), jax.process_count()
  held = {p: set() for p in range(count)}
  rows_of = sharding.batch_sharding(mesh, 1).devices_indices_map((shards,))
  for device, (rows,) in rows_of.items():
    held[device.process_index].update(range(shards)[rows])
  per_process = shards // count
  if shards % count or any(held[p] != set(range(p * per_process, (p + 1) * per_process))
                           for p in held):
    raise errors.BadValueError(
        f"the mesh {dict(mesh.shape)} does not give each of the {count} processes batch rows "
        f"of its own: make data x fsdp a multiple of {count}, with tensor within a host")


def in_step(batches, idle):
  """`batches`, then `idle` as long as another process still has a batch."""
  for batch in itertools.chain(batches, itertools.repeat(None)):
    if not _any_process(batch is not None):
      return
    yield idle if batch is None else batch


def gather(value):
  """[the JSON value of process 0, of process 1, ...] on every process."""
  if jax.process_count() == 1:
    return [value]
  data = np.frombuffer(json.dumps(value).encode(), np.uint8)
  sizes = multihost_utils.process_allgather(np.array(len(data)))
  padded = np.zeros(int(np.max(sizes)), np.uint8)
  padded[:len(data)] = data
  rows = multihost_utils.process_allgather(padded)
  return [json.loads(row[:size].tobytes()) for row, size in zip(rows, sizes)]


def from_process_0(value):
  """Process 0's JSON value, on every process (the others' `value` is not used)."""
  return gather(value if jax.process_index() == 0 else None)[0]


def _any_process(flag):
  if jax.process_count() == 1:
    return flag
  return bool(np.any(multihost_utils.process_allgather(np.array(flag))))
