"""End to end on easy-vqa: a tiny VLM trained here beats the majority answer on held-out
questions, and the harness scores it at two budgets, resuming instead of repeating."""
import collections
import json
import os

import pytest

from vlm_jax import checkpoints, configs, train
from vlm_jax.data.easy_vqa_source import easy_vqa_records
from vlm_jax.evaluate import BENCHMARKS, harness
from vlm_jax.train import pretrained

EVAL_EXAMPLES = 400


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """avgpool (no params tied to the budget, so one checkpoint serves V = 16 and 4)."""
  workdir = tmp_path_factory.mktemp("easy_vqa")
  config = configs.load(os.path.join(
      configs.CONFIG_DIR, "train", "tiny.py:size=s,compressor=avgpool,budget=16,steps=400"))
  config.mesh.update(data=-1, num_devices=1)
  state, _ = train.train(config, workdir / "run")
  model_dir = str(workdir / "model")
  checkpoints.save(model_dir, pretrained.read_run_config(workdir / "run").model, state.params)
  return workdir, model_dir


def _majority_baseline():
  """Accuracy of always answering the train split's most common answer."""
  train_answers = collections.Counter(r["answer"] for r in easy_vqa_records("train"))
  majority = train_answers.most_common(1)[0][0]
  data = BENCHMARKS.get("easy_vqa").read(num_examples=EVAL_EXAMPLES)
  return BENCHMARKS.get("easy_vqa").score(
      {q: majority for q in data.annotations}, data)["accuracy"]


def test_learns_easy_vqa_and_results_resume(trained):
  workdir, model_dir = trained
  config = configs.load(os.path.join(
      configs.CONFIG_DIR, "eval", f"builtin.py:benchmarks=easy_vqa,num_examples={EVAL_EXAMPLES}"))
  rows = harness.run(config, [model_dir], str(workdir / "eval"), budgets=[16, 4])
  assert [(r["visual_tokens"], r["benchmark"]) for r in rows] == [(16, "easy_vqa"), (4, "easy_vqa")]
  baseline = _majority_baseline()
  accuracy = rows[0]["accuracy"]
  print(f"easy-vqa accuracy {accuracy:.3f} vs majority-answer baseline {baseline:.3f}")
  assert accuracy > baseline + 0.15
  assert rows[0]["n_scored"] == EVAL_EXAMPLES and rows[0]["inference_gflops"] > 0

  with open(workdir / "eval" / "results.json") as f:
    written = json.load(f)
  assert len(written) == 2
  assert harness.run(config, [model_dir], str(workdir / "eval"), budgets=[16, 4]) == written
