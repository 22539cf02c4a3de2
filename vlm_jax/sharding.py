"""Device mesh (data, fsdp, tensor) and logical-axis rules for params and activations.

Every param is created with logical axis names (`nn.with_logical_partitioning`);
every large activation is constrained with `nn.with_logical_constraint`. The
rules below map those names to mesh axes, so one model runs on one CPU device
or a pod slice.
"""
import contextlib
import logging

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from vlm_jax import errors

MESH_AXES = ("data", "fsdp", "tensor")

# Logical name -> mesh axis (or axes). Names absent here are replicated.
LOGICAL_RULES = (
    # activations
    ("act_batch", ("data", "fsdp")),
    ("act_length", None),
    ("act_embed", None),
    ("act_heads", "tensor"),
    ("act_kv_heads", "tensor"),
    ("act_mlp", "tensor"),
    ("act_vocab", "tensor"),
    # params
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("layers", None),
    ("norm", None),
)


def make_mesh(data=1, fsdp=1, tensor=1, devices=None):
  """A (data, fsdp, tensor) mesh; -1 for one axis takes the remaining devices."""
  devices = jax.devices() if devices is None else devices
  shape = [data, fsdp, tensor]
  if shape.count(-1) > 1:
    raise ValueError(f"at most one mesh axis may be -1, got {shape}")
  if -1 in shape:
    known = int(np.prod([s for s in shape if s != -1]))
    shape[shape.index(-1)] = len(devices) // known
  if int(np.prod(shape)) != len(devices):
    raise ValueError(f"mesh {dict(zip(MESH_AXES, shape))} needs {int(np.prod(shape))} "
                     f"devices, have {len(devices)}")
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES)


def mesh_of(config):
  """The mesh a config's `mesh` group describes: data, fsdp, tensor (one may be -1) over
  every device, or over the first `num_devices` (one process only)."""
  devices = jax.devices()
  if config.num_devices is not None:
    if jax.process_count() > 1:
      raise errors.BadValueError("mesh.num_devices is for one process; a multi-host run uses "
                                 "every device")
    devices = devices[:config.num_devices]
  return make_mesh(config.data, config.fsdp, config.tensor, devices)


def _fit_spec(spec, shape, mesh):
  """Replicates the dimensions whose size the mesh axes do not divide."""
  fitted = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = (axes,) if isinstance(axes, str) else tuple(axes or ())
    if dim % int(np.prod([mesh.shape[n] for n in names])):
      logging.info("dim %d of %s not divisible over %s: replicated", dim, shape, names)
      axes = None
    fitted.append(axes)
  return PartitionSpec(*fitted)


def logical_shardings(abstract_params, mesh, rules=LOGICAL_RULES):
  """NamedShardings for a (boxed, possibly abstract) params tree from `model.init`."""
  logical_specs = nn.get_partition_spec(abstract_params)
  mesh_specs = nn.logical_to_mesh(logical_specs, rules)
  return jax.tree.map(
      lambda x, spec: NamedSharding(mesh, _fit_spec(spec, x.shape, mesh)),
      nn.unbox(abstract_params), mesh_specs,
      is_leaf=lambda x: isinstance(x, PartitionSpec))


def shard_params(params, shardings):
  """Places a plain params tree on the mesh."""
  return jax.tree.map(jax.device_put, params, shardings)


def check_batch_splits(batch, microbatches, mesh):
  """Raises unless `batch` splits into `microbatches` whose rows split over data x fsdp."""
  if batch % microbatches:
    raise errors.BadValueError(f"batch {batch} does not split into {microbatches} microbatches")
  shards = batch_shards(mesh)
  rows = batch // microbatches
  if rows % shards:
    raise errors.BadValueError(f"a (micro)batch of {rows} rows does not split over the {shards} "
                               f"batch shards (data x fsdp) of the mesh {dict(mesh.shape)}")


def batch_shards(mesh):
  """How many ways `mesh` splits the batch: data x fsdp."""
  return mesh.shape["data"] * mesh.shape["fsdp"]


def batch_sharding(mesh, ndim):
  """Shards the leading (batch) axis over data and fsdp."""
  return NamedSharding(mesh, PartitionSpec(("data", "fsdp"), *(None,) * (ndim - 1)))


@contextlib.contextmanager
def activate(mesh, rules=LOGICAL_RULES):
  """Within: `mesh` is the current mesh and logical names resolve with `rules`."""
  with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
    yield
