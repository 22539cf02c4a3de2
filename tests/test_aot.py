"""Ahead-of-time compilation for TPU slices with libtpu's compile-only devices.

The compiling tests skip where libtpu is missing or cannot describe a topology.
"""
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from vlm_jax import aot, cli, configs, distributed, flops, models
from vlm_jax.aot import compiler, topology

GIB = 2 ** 30
PAPER = "configs/train/paper.py:llm={llm},budget=1,stage=2,stage1=unused"


@pytest.fixture(scope="module")
def libtpu_topologies():
  """Skips without libtpu; keeps TPU programs out of the session's persistent compilation
  cache, which this CPU host's client cannot load them back from."""
  pytest.importorskip("libtpu")
  try:
    topology.devices(topology.parse_slice("v5p-8"))
  except topology.LibtpuUnavailableError as e:
    pytest.skip(f"libtpu cannot describe TPU topologies here: {e}")
  _use_compilation_cache(False)
  yield
  _use_compilation_cache(True)


def _use_compilation_cache(enabled):
  jax.config.update("jax_enable_compilation_cache", enabled)
  compilation_cache.reset_cache()


def small_vlm_config():
  """Tiny tower and compressor, a 2-layer LLM wide enough (1024) to shard four ways
  without TPU tile padding; stage 2: the vision tower frozen, the rest trained."""
  config = configs.load("configs/train/tiny.py:size=l,batch=8,stage=2,compressor=avgpool")
  config.model.llm.update(hidden_size=1024, num_heads=8, num_kv_heads=8, head_dim=128,
                          intermediate_size=2048, num_layers=2)
  return config


def replicated_train_bytes(config):
  """Params, AdamW's two moments of the trained groups and the batch, unsharded, by hand."""
  params = nn.unbox(models.abstract_params(config.model))
  count = {group: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
           for group, tree in params.items()}
  trained = sum(n for group, n in count.items() if config.optim.learning_rates[group] > 0)
  b, t, q = config.batch_size, config.data.max_length, config.data.max_length
  size = config.model.vision.image_size
  batch = b * (3 * t + 2 * q) * 4 + b * size * size * 3 * 4  # int32 text, float32 pixels
  return 4 * sum(count.values()) + 2 * 4 * trained + batch


@pytest.mark.parametrize("name, chips, grid, libtpu_name", [
    ("v5p-8", 4, (2, 2, 1), "v5:2x2x1"),
    ("v5p-64", 32, (2, 4, 4), "v5:2x4x4"),
    ("v5p-128", 64, (4, 4, 4), "v5:4x4x4"),
    ("v4-16", 8, (2, 2, 2), "v4:2x2x2"),
    ("v5e-16", 16, (4, 4), "v5e:4x4"),
    ("v5litepod-8", 8, (2, 4), "v5e:2x4"),
    ("v6e-1", 1, (1, 1), "v6e:1x1"),
])
def test_slice_names(name, chips, grid, libtpu_name):
  tpu_slice = topology.parse_slice(name)
  assert (tpu_slice.chips, tpu_slice.chip_grid, tpu_slice.topology_name) == (
      chips, grid, libtpu_name)


@pytest.mark.parametrize("name", ["v5p-12", "v5p-7", "v7-8", "v5p"])
def test_bad_slice_names(name):
  with pytest.raises(ValueError):
    topology.parse_slice(name)


def test_parse_out_of_memory():
  message = ("RESOURCE_EXHAUSTED: Ran out of memory on HBM, the total memory required for "
             "HLO temporaries (102.30G) exceeds available HBM (95.74G).")
  assert compiler.parse_out_of_memory(message) == (int(102.30 * GIB), int(95.74 * GIB))
  assert compiler.parse_out_of_memory("INTERNAL: something else") == (None, None)


def test_slice_devices(libtpu_topologies):
  v5p = topology.devices(topology.parse_slice("v5p-16"))
  v5e = topology.devices(topology.parse_slice("v5e-4"))
  assert (len(v5p), v5p[0].device_kind) == (8, "TPU v5")
  assert (len(v5e), v5e[0].device_kind) == (4, "TPU v5 lite")


@pytest.fixture(scope="module")
def train_report(libtpu_topologies):
  return aot.compile_step(small_vlm_config(), "v5p-8", mesh={"data": 1, "fsdp": 4, "tensor": 1})


def test_train_step_params_sharded(train_report):
  config = small_vlm_config()
  replicated = replicated_train_bytes(config)
  assert abs(train_report.replicated_argument_bytes - replicated) < 1024  # + step, rng, counts
  assert train_report.compiled and train_report.fits
  share = replicated / 4
  assert 0.97 * share <= train_report.argument_bytes <= 1.05 * share
  assert train_report.collectives["all-gather"] > 0  # fsdp gathers the params it uses
  assert train_report.mesh == {"data": 1, "fsdp": 4, "tensor": 1}


def test_decode_step_cache_sharded(libtpu_topologies):
  config = small_vlm_config()
  report = aot.compile_step(config, "v5e-4", step="decode", mesh={"fsdp": 4},
                            max_new_tokens=64)
  llm, b = config.model.llm, config.batch_size
  v = report.sizes["visual_tokens"]
  slots = config.data.max_length - 1 + v + 64
  cache = 2 * llm.num_layers * b * slots * llm.num_kv_heads * llm.head_dim * 4  # k, v float32
  params = 4 * models.param_count(config.model)
  assert report.compiled and report.fits
  assert report.argument_bytes <= 1.05 * (cache + params) / 4


def test_not_fitting_is_reported(libtpu_topologies):
  config = configs.load(PAPER.format(llm="qwen1_5_7b"))
  report = aot.compile_step(config, "v5e-4")
  assert not report.fits and not report.compiled
  assert report.required_temp_bytes > 0 and report.compiler_hbm_bytes <= 16 * GIB
  assert report.peak_bytes == report.sharded_argument_bytes + report.required_temp_bytes
  # float32 LLM params and AdamW's two moments, over 4 chips at best
  assert report.sharded_argument_bytes >= 12 * flops.llm_params(config.model) / 4
  assert report.peak_bytes > report.hbm_bytes == 16 * GIB


def test_cli_exit_codes(libtpu_topologies, capsys):
  spec = PAPER.format(llm="qwen1_5_0_5b")
  assert cli.main(["compile", "--config", spec, "--topology", "v5e-1", "--json"]) == 3
  report = json.loads(capsys.readouterr().out)
  assert (report["fits"], report["chips"], report["config"]) == (False, 1, spec)
  assert report["peak_bytes"] > report["hbm_bytes"]
  assert cli.main(["compile", "--config", spec, "--topology", "v5p-8",
                   "--mesh", "fsdp=3"]) == 2
  assert "needs 3 devices" in capsys.readouterr().err


def test_missing_libtpu(monkeypatch, capsys):
  monkeypatch.setitem(sys.modules, "libtpu", None)  # import libtpu raises ImportError
  with pytest.raises(aot.LibtpuUnavailableError, match=r"pip install -e '\.\[aot\]'"):
    topology.require_libtpu()
  assert cli.main(["compile", "--config", "configs/train/tiny.py", "--topology", "v5p-8"]) == 4
  assert "libtpu==0.0.42" in capsys.readouterr().err


def test_compile_prints_no_libtpu_noise(libtpu_topologies):
  """On a host without TPU chips libtpu is kept from probing for them (and logging it)."""
  if distributed.has_tpu_chips():
    pytest.skip("this machine has TPU chips")
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_PLATFORMS", "TPU_ACCELERATOR_TYPE", "TPU_WORKER_HOSTNAMES")}
  result = subprocess.run(
      [sys.executable, "-m", "vlm_jax.cli", "compile", "--config",
       "configs/train/tiny.py:size=xs,budget=4", "--topology", "v5e-1"],
      capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode == 0, result.stderr
  assert "fits" in result.stdout and not result.stderr.strip()
