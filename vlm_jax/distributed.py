"""Multi-host start-up: `jax.distributed.initialize` when the run spans processes.

Where the settings come from, first found wins:
  1. arguments (the `--coordinator-address`, `--num-processes`, `--process-id`
     flags of `add_arguments`),
  2. env vars VLM_JAX_COORDINATOR, VLM_JAX_NUM_PROCESSES, VLM_JAX_PROCESS_ID,
  3. on a Cloud TPU VM, jax's own detection from the TPU metadata (no settings).
With none of these, the run is single-host and nothing is initialized.

Call `initialize` before anything else touches jax devices.
"""
import glob
import logging
import os

COORDINATOR_ENV = "VLM_JAX_COORDINATOR"
NUM_PROCESSES_ENV = "VLM_JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "VLM_JAX_PROCESS_ID"
# Device files of TPU chips: /dev/accel* (v4, v5e) or /dev/vfio/* (v5p, v6e).
TPU_DEVICE_FILES = ("/dev/accel*", "/dev/vfio/*")


def has_tpu_chips():
  """Whether this host has TPU chips (their device files, as JAX looks for them)."""
  return any(glob.glob(pattern) for pattern in TPU_DEVICE_FILES)


def add_arguments(parser):
  """Adds the multi-host flags read by `initialize_from_args`."""
  group = parser.add_argument_group("multi-host (default: env vars, Cloud TPU detection, or single host)")
  group.add_argument("--coordinator-address", help=f"host:port of process 0 (or ${COORDINATOR_ENV})")
  group.add_argument("--num-processes", type=int, help=f"number of processes (or ${NUM_PROCESSES_ENV})")
  group.add_argument("--process-id", type=int, help=f"this process's index, 0-based (or ${PROCESS_ID_ENV})")


def initialize_from_args(args):
  """`initialize` with the flags of `add_arguments`; returns (process_index, process_count)."""
  return initialize(args.coordinator_address, args.num_processes, args.process_id)


def initialize(coordinator_address=None, num_processes=None, process_id=None, local_device_ids=None):
  """Joins the processes of a multi-host run; returns (process_index, process_count).

  Does nothing when already initialized or when running on a single host.
  """
  import jax

  if jax.distributed.is_initialized():
    logging.info("jax.distributed already initialized")
    return jax.process_index(), jax.process_count()

  settings = {
      "coordinator_address": coordinator_address or os.environ.get(COORDINATOR_ENV) or None,
      "num_processes": num_processes if num_processes is not None else _int_from_env(NUM_PROCESSES_ENV),
      "process_id": process_id if process_id is not None else _int_from_env(PROCESS_ID_ENV),
  }
  given = {name: value for name, value in settings.items() if value is not None}

  if given:
    missing = [name for name in settings if name not in given]
    if missing and not _on_cloud_tpu():
      raise ValueError(
          f"incomplete multi-host settings {given}: also set {', '.join(missing)} "
          f"(flags --coordinator-address/--num-processes/--process-id or "
          f"${COORDINATOR_ENV}/${NUM_PROCESSES_ENV}/${PROCESS_ID_ENV})")
    logging.info("initializing jax.distributed with %s", given)
  elif _on_cloud_tpu():
    logging.info("Cloud TPU VM: initializing jax.distributed from the TPU metadata")
  else:
    logging.info("single host: jax.distributed not initialized")
    return jax.process_index(), jax.process_count()

  _ensure_cpu_collectives(jax)
  jax.distributed.initialize(local_device_ids=local_device_ids, **given)
  logging.info("process %d of %d, %d local and %d global devices",
               jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count())
  return jax.process_index(), jax.process_count()


def _int_from_env(name):
  value = os.environ.get(name)
  if not value:
    return None
  try:
    return int(value)
  except ValueError:
    raise ValueError(f"${name} must be an integer, got {value!r}") from None


def _on_cloud_tpu():
  """True when TPU chips are attached, the case where jax reads the slice layout from the VM metadata."""
  from jax._src import hardware_utils
  num_chips, _ = hardware_utils.num_available_tpu_chips_and_device_id()
  return num_chips > 0


def _ensure_cpu_collectives(jax):
  """Cross-process computations on CPU fail without a collectives implementation: use gloo (TCP).

  Only the CPU client reads this option, so it changes nothing for TPU or GPU
  computations; an explicit choice such as "mpi" is kept.
  """
  if jax.config.jax_cpu_collectives_implementation is None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    logging.info("CPU cross-process collectives: gloo")
