"""vlm_jax.distributed: two CPU processes on loopback form one 4-device system."""
import argparse
import json
import os
import pathlib
import subprocess
import sys

import jax
import pytest

import loopback
from vlm_jax import distributed

REPO = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT_S = 60

# Process i holds [1, 2] * 10**i: a sum that stayed inside one process would give
# 3 or 30, only the cross-process sum gives 33.
WORKER = """
import json, sys
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

# Start without CPU collectives: initialize must turn gloo on for the sum to run.
jax.config.update("jax_cpu_collectives_implementation", None)
from vlm_jax import distributed

index, count = distributed.initialize(**json.loads(sys.argv[1]))
mesh = jax.make_mesh((4,), ("data",))
local = np.array([1.0, 2.0], np.float32) * 10**index
array = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), local)
total = jax.jit(jnp.sum, out_shardings=NamedSharding(mesh, P()))(array)
print(json.dumps({
    "returned": [index, count],
    "process_index": jax.process_index(),
    "process_count": jax.process_count(),
    "device_count": jax.device_count(),
    "local_device_count": jax.local_device_count(),
    "global_shape": list(array.shape),
    "total": float(total),
}))
"""


def _worker_env(extra):
  env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_JAX_")}
  env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2",
             PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")])))
  env.update(extra)
  return env


def test_two_processes_share_devices_and_sum_across_hosts():
  address = f"127.0.0.1:{loopback.free_port()}"
  # Process 0 is configured by arguments, process 1 by the environment.
  launches = [
      ({"coordinator_address": address, "num_processes": 2, "process_id": 0}, {}),
      ({}, {"VLM_JAX_COORDINATOR": address, "VLM_JAX_NUM_PROCESSES": "2", "VLM_JAX_PROCESS_ID": "1"}),
  ]
  procs = [
      subprocess.Popen([sys.executable, "-c", WORKER, json.dumps(kwargs)], env=_worker_env(env),
                       cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for kwargs, env in launches
  ]
  with loopback.killed_on_exit(procs):
    outputs = loopback.json_outputs(procs, timeout=TIMEOUT_S)

  for index, result in enumerate(outputs):
    assert result["returned"] == [index, 2]
    assert result["process_index"] == index
    assert result["process_count"] == 2
    assert result["device_count"] == 4
    assert result["local_device_count"] == 2
    assert result["global_shape"] == [4]
    assert result["total"] == 1 + 2 + 10 + 20


def test_single_host_does_nothing(monkeypatch):
  for name in (distributed.COORDINATOR_ENV, distributed.NUM_PROCESSES_ENV, distributed.PROCESS_ID_ENV):
    monkeypatch.delenv(name, raising=False)
  assert distributed.initialize() == (0, 1)
  assert not jax.distributed.is_initialized()


def test_incomplete_settings_name_what_is_missing(monkeypatch):
  monkeypatch.delenv(distributed.NUM_PROCESSES_ENV, raising=False)
  monkeypatch.setenv(distributed.PROCESS_ID_ENV, "0")
  with pytest.raises(ValueError, match="also set num_processes") as error:
    distributed.initialize(coordinator_address="127.0.0.1:1234")
  assert "VLM_JAX_NUM_PROCESSES" in str(error.value)
  assert not jax.distributed.is_initialized()


def test_non_integer_env_var_is_rejected(monkeypatch):
  monkeypatch.setenv(distributed.NUM_PROCESSES_ENV, "two")
  with pytest.raises(ValueError, match=r"\$VLM_JAX_NUM_PROCESSES must be an integer, got 'two'"):
    distributed.initialize(coordinator_address="127.0.0.1:1234", process_id=0)


def test_flags_reach_initialize(monkeypatch):
  monkeypatch.delenv(distributed.NUM_PROCESSES_ENV, raising=False)
  parser = argparse.ArgumentParser()
  distributed.add_arguments(parser)
  args = parser.parse_args(["--coordinator-address", "127.0.0.1:1234", "--process-id", "1"])
  with pytest.raises(ValueError, match=r"settings \{'coordinator_address': '127.0.0.1:1234', 'process_id': 1\}"):
    distributed.initialize_from_args(args)
