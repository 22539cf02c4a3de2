"""The training loop: a resumed run repeats the uninterrupted one; sharded and
two-process runs repeat the single-device one."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

import loopback
import train_fixtures
from train_fixtures import SyntheticDataset, train_config
from vlm_jax import checkpoints, models, sharding, train
from vlm_jax.train import pretrained, state

TESTS = pathlib.Path(__file__).resolve().parent
STEPS, HALF = 6, 3  # train_config: 6 steps, a checkpoint every 3


def losses(result):
  return [h["loss"] for h in result.history]


@pytest.fixture(scope="module")
def single_device_run(tmp_path_factory):
  """(workdir, result) of the 6-step run on one device."""
  workdir = tmp_path_factory.mktemp("single")
  result = train.train(train_config(), workdir, dataset=SyntheticDataset)
  assert [h["step"] for h in result.history] == list(range(1, STEPS + 1))
  return workdir, result


@pytest.fixture(scope="module")
def single_device(single_device_run):
  return losses(single_device_run[1])


def assert_trees_equal(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# The default chunk holds all 4 x 19 positions; 8 positions make 10 chunks of 2 per row.
@pytest.mark.parametrize("loss_chunk_size", [train.default_config().loss_chunk_size, 8])
def test_resumed_run_repeats_the_uninterrupted_one(single_device, tmp_path, loss_chunk_size):
  def config():
    chunked = train_config()
    chunked.loss_chunk_size = loss_chunk_size
    return chunked

  first = train.train(config(), tmp_path, dataset=SyntheticDataset, until_step=HALF)
  assert [h["step"] for h in first.history] == [1, 2, 3]
  assert sorted(os.listdir(tmp_path / "checkpoints")) == [str(HALF)]
  assert first.history[-1]["data/truncated"] == HALF  # one per batch read

  second = train.train(config(), tmp_path, dataset=SyntheticDataset)
  assert [h["step"] for h in second.history] == [4, 5, 6]
  assert int(second.state.step) == STEPS
  assert second.history[-1]["data/truncated"] == STEPS  # the data counters resumed too
  np.testing.assert_allclose(losses(first) + losses(second), single_device, atol=1e-6, rtol=0)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == [str(HALF), str(STEPS)]
  logged = train_fixtures.event_scalars(tmp_path / "tensorboard", "loss")
  np.testing.assert_allclose([logged[step] for step in range(1, STEPS + 1)], single_device,
                             rtol=1e-6)
  saved = json.loads((tmp_path / "config.json").read_text())
  processor = saved["model"].pop("processor")  # what the run fed its model
  assert saved["model"] == json.loads(config().model.to_json())
  assert (processor["tokenizer"], processor["template"], processor["aspect"]) == (
      "builtin", "chatml", "square")

  other = config()
  other.model.compressor.budget = 1
  with pytest.raises(ValueError, match=r"cannot resume: compressor.budget=4 \(config: 1\)"):
    train.train(other, tmp_path, dataset=SyntheticDataset)


def test_2x2x2_mesh_repeats_the_single_device_run(single_device, tmp_path):
  config = train_config()
  config.mesh.update(data=2, fsdp=2, tensor=2, num_devices=8)
  result = train.train(config, tmp_path, dataset=SyntheticDataset)
  params = jax.tree.leaves(result.state.params)
  assert any(len(x.sharding.device_set) == 8 and not x.sharding.is_fully_replicated
             for x in params)
  np.testing.assert_allclose(losses(result), single_device, atol=1e-5, rtol=0)


# Two processes with 2 CPU devices each, one 4-device mesh over both (gloo collectives).
WORKER = """
import json, sys
sys.path.insert(0, {tests!r})
from vlm_jax import distributed
distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                       process_id=int(sys.argv[2]))
import train_fixtures
from vlm_jax import train
config = train_fixtures.train_config()
config.mesh.update(data=1, fsdp=2, tensor=2, num_devices=None)
result = train.train(config, sys.argv[3], dataset=train_fixtures.SyntheticDataset)
print(json.dumps([h["loss"] for h in result.history]))
"""


def test_two_processes_repeat_one_process_with_four_devices(tmp_path):
  address = f"127.0.0.1:{loopback.free_port()}"
  env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_JAX_")}
  env.update(JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2",
             PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS.parent), env.get("PYTHONPATH")])))
  script = WORKER.format(tests=str(TESTS))
  procs = [subprocess.Popen([sys.executable, "-c", script, address, str(i), str(tmp_path / "two")],
                            env=env, cwd=TESTS.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True) for i in range(2)]
  with loopback.killed_on_exit(procs):
    config = train_config()
    config.mesh.update(data=1, fsdp=2, tensor=2, num_devices=4)
    want = losses(train.train(config, tmp_path / "one", dataset=SyntheticDataset))
    outputs = loopback.json_outputs(procs, timeout=180)
  for got in outputs:  # every process sees the global loss
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
  assert sorted(os.listdir(tmp_path / "two" / "checkpoints" / str(STEPS) / "data")) == [
      "commit_success.txt", "process_0-of-2.json", "process_1-of-2.json"]


def test_a_run_starts_from_converted_llm_and_vision_checkpoints(tmp_path):
  config = train_config()
  mesh = sharding.make_mesh(devices=jax.devices()[:1])
  shardings = sharding.logical_shardings(models.abstract_params(config.model), mesh)
  donor = state.init_params(config.model, jax.random.PRNGKey(7), shardings,
                            dict(config.compiler_options))
  llm = ml_collections.ConfigDict(dict(kind="llm", dtype="float32", llm=config.model.llm))
  llm.llm.max_position_embeddings = 512  # the checkpoint's architecture wins
  vision = ml_collections.ConfigDict(dict(kind="vision", dtype="float32",
                                          vision=config.model.vision))
  checkpoints.save(tmp_path / "llm", llm, donor["llm"])
  checkpoints.save(tmp_path / "vision", vision, donor["vision"])
  config.init_llm_from, config.init_vision_from = str(tmp_path / "llm"), str(tmp_path / "vision")

  result = train.train(config, tmp_path / "run", dataset=SyntheticDataset, until_step=0)
  assert_trees_equal(result.state.params["llm"], donor["llm"])
  assert_trees_equal(result.state.params["vision"], donor["vision"])
  assert not np.array_equal(result.state.params["projector"]["linear_1"]["kernel"],
                            donor["projector"]["linear_1"]["kernel"])  # fresh from the seed
  saved = json.loads((tmp_path / "run" / "config.json").read_text())
  assert saved["model"]["llm"]["max_position_embeddings"] == 512


def test_a_run_starts_from_an_earlier_run(single_device_run, tmp_path):
  earlier, earlier_result = single_device_run
  config = train_config()
  config.init_from = str(earlier)
  result = train.train(config, tmp_path, dataset=SyntheticDataset, until_step=0)
  assert int(result.state.step) == 0
  assert_trees_equal(result.state.params, earlier_result.state.params)
  model, params = pretrained.load_run(earlier)
  assert model.processor.template == "chatml"
  del model.processor
  assert json.loads(model.to_json()) == json.loads(config.model.to_json())
  assert_trees_equal(params, earlier_result.state.params)

  config.model.compressor.budget = 1
  with pytest.raises(ValueError, match=r"compressor.budget=4 \(config: 1\)"):
    train.train(config, tmp_path / "other", dataset=SyntheticDataset, until_step=0)
