"""`vlm-jax eval` on a mesh: on 2x2x2 (8 host devices) the same greedy answers as on one
device, params restored onto their shardings, bfloat16 params, throughput in the rows; two
processes of 2 devices each answer every question once, as one process does."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

import eval_fixtures
import loopback
from eval_fixtures import BUCKETS, MESH_2X2X2, ONE_DEVICE, QUESTIONS
from vlm_jax import cli, configs, sharding
from vlm_jax.evaluate import harness
from vlm_jax.generate import sharded

TESTS = pathlib.Path(__file__).resolve().parent
BUDGETS = (16, 4)
PER_RUN = ("questions_per_s", "generated_tokens_per_s", "answers_file")  # timing, workdir


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
  root = tmp_path_factory.mktemp("quecc")
  return [eval_fixtures.save_quecc(root / f"quecc_v{v}", v) for v in BUDGETS]


def evaluate(checkpoints, workdir, mesh, *more):
  rows = harness.run(eval_fixtures.eval_config(), checkpoints, str(workdir),
                     overrides=[BUCKETS, *mesh, *more])
  return rows, {r["visual_tokens"]: answers(r["answers_file"]) for r in rows}


def answers(path):
  """[(question_id, text)] of an answers file, in benchmark order."""
  with open(path) as f:
    return [(a["question_id"], a["text"]) for a in map(json.loads, f)]


def untimed(row):
  return {k: v for k, v in row.items() if k not in PER_RUN}


@pytest.fixture(scope="module")
def one_device(checkpoints, tmp_path_factory):
  return evaluate(checkpoints, tmp_path_factory.mktemp("one_device"), ONE_DEVICE)


def test_2x2x2_mesh_answers_as_one_device(checkpoints, one_device, tmp_path):
  rows, got = evaluate(checkpoints, tmp_path, MESH_2X2X2)
  want_rows, want = one_device
  assert sorted(got) == list(BUDGETS[::-1])
  for v in BUDGETS:
    assert len(got[v]) == QUESTIONS and got[v] == want[v], v
  assert [untimed(r) for r in rows] == [untimed(r) for r in want_rows]
  lengths = {len(text) for v in BUDGETS for _, text in got[v]}
  assert 0 in lengths and len(lengths) > 3  # some answers end at once, others run on


def test_rows_carry_throughput_and_a_rerun_resumes(checkpoints, one_device, tmp_path):
  rows, _ = one_device
  for row in rows:
    assert row["dtype"] == "float32" and row["n_scored"] == QUESTIONS
    assert row["generated_tokens_per_s"] > row["questions_per_s"] > 0
    assert "accuracy" in row and "accuracy_all" in row
  workdir = pathlib.Path(rows[0]["answers_file"]).parent.parent
  assert harness.run(eval_fixtures.eval_config(), checkpoints, str(workdir),
                     overrides=[BUCKETS, *ONE_DEVICE]) == rows
  with open(workdir / "results.csv") as f:
    assert "questions_per_s,generated_tokens_per_s" in f.readline()


def device_bytes(tree):
  """{device: bytes of the tree's shards on it}."""
  held = {}
  for leaf in jax.tree.leaves(tree):
    for shard in leaf.addressable_shards:
      held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
  return held


def test_params_are_restored_onto_their_shardings(checkpoints):
  mesh = sharding.make_mesh(2, 2, 2)
  config, params = harness.load_model(checkpoints[0], mesh)
  shardings = sharded.param_shardings(config, mesh)
  assert jax.tree.map(lambda x: x.sharding, params) == shardings
  whole = sum(x.nbytes for x in jax.tree.leaves(params))
  held = device_bytes(params)
  assert len(held) == 8
  # fsdp x tensor split the large params four ways; what stays whole is small (norms, biases).
  assert max(held.values()) < 0.3 * whole
  largest = max(jax.tree.leaves(params), key=lambda x: x.nbytes)
  assert {s.data.nbytes for s in largest.addressable_shards} == {largest.nbytes // 4}


def test_bfloat16_params_stay_on_their_shardings(checkpoints):
  mesh = sharding.make_mesh(2, 2, 2)
  _, float32 = harness.load_model(checkpoints[1], mesh)
  config, bfloat16 = harness.load_model(checkpoints[1], mesh, "bfloat16")
  assert config.dtype == "bfloat16"
  assert {x.dtype for x in jax.tree.leaves(bfloat16)} == {np.dtype("bfloat16")}
  assert jax.tree.map(lambda x: x.sharding, bfloat16) == jax.tree.map(lambda x: x.sharding,
                                                                        float32)
  assert device_bytes(bfloat16) == {d: n // 2 for d, n in device_bytes(float32).items()}


@pytest.mark.parametrize("overrides, expected", [
    (["mesh.data=3"], "mesh {'data': 3, 'fsdp': 2, 'tensor': 1} needs 6 devices, have 8"),
    (["data.batch_size=6"], "a (micro)batch of 6 rows does not split over the 8 batch shards"),
    (["dtype=float16"], "unknown inference dtype 'float16'; known: float32, bfloat16"),
])
def test_bad_mesh_batch_or_dtype_is_one_line(checkpoints, capsys, tmp_path, overrides, expected):
  argv = ["eval", "--config", os.path.join(configs.CONFIG_DIR, "eval", "builtin.py"),
          "--checkpoints", checkpoints[0], "--workdir", str(tmp_path)]
  assert cli.main(argv + [a for item in overrides for a in ("--set", item)]) == 2
  captured = capsys.readouterr()
  [line] = captured.err.splitlines()
  assert line.startswith("vlm-jax eval: error: ") and expected in line


# Two processes with 2 CPU devices each, one (data 1, fsdp 2, tensor 2) mesh over both, each
# with its own workdir: process 0 alone must write there.
WORKER = """
import json, sys
sys.path.insert(0, {tests!r})
from vlm_jax import distributed
distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                       process_id=int(sys.argv[2]))
import eval_fixtures
from vlm_jax.evaluate import harness
args = (eval_fixtures.eval_config(), [sys.argv[3]], sys.argv[4])
overrides = [eval_fixtures.BUCKETS, "mesh.fsdp=2", "mesh.tensor=2"]
rows = harness.run(*args, overrides=overrides)
resumed = harness.run(*args, overrides=overrides)  # nothing left to run
print(json.dumps([rows, resumed]))
"""


def test_two_processes_answer_each_question_once_as_one_process(checkpoints, one_device,
                                                                tmp_path):
  address = f"127.0.0.1:{loopback.free_port()}"
  env = {k: v for k, v in os.environ.items() if not k.startswith("VLM_JAX_")}
  env.update(JAX_PLATFORMS="cpu",  # optimization level 0 compiles several times faster
             XLA_FLAGS="--xla_force_host_platform_device_count=2 "
                       "--xla_backend_optimization_level=0",
             PYTHONPATH=os.pathsep.join(filter(None, [str(TESTS.parent), env.get("PYTHONPATH")])))
  script = WORKER.format(tests=str(TESTS))
  procs = [subprocess.Popen([sys.executable, "-c", script, address, str(i), checkpoints[1],
                             str(tmp_path / str(i))], env=env, cwd=TESTS.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
           for i in range(2)]
  with loopback.killed_on_exit(procs):
    outputs = loopback.json_outputs(procs, timeout=300)
  want_rows, want = one_device
  want_row = next(r for r in want_rows if r["visual_tokens"] == 4)
  written = outputs[0][0]
  for rows, resumed in outputs:  # every process returns the rows; resumed, process 0's
    assert [untimed(r) for r in rows] == [untimed(want_row)]
    assert resumed == written
  assert answers(written[0]["answers_file"]) == want[4]
  assert len({question for question, _ in want[4]}) == QUESTIONS
  assert sorted(os.listdir(tmp_path / "0")) == ["answers", "results.csv", "results.json",
                                                "results.md"]
  assert not (tmp_path / "1").exists()
