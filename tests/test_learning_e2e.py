"""End to end on the built-in OCR task: a tiny VLM trained here reads held-out 6-digit
numbers, beating the majority answer and itself with the images shuffled across questions
(so it reads the image, not just the question), and the harness scores it at two budgets,
resuming instead of repeating."""
import collections
import json
import os

import pytest

from vlm_jax import checkpoints, configs, train
from vlm_jax.data import procedural
from vlm_jax.evaluate import BENCHMARKS, harness
from vlm_jax.train import pretrained

EVAL_EXAMPLES = 400
IMAGE_MARGIN = 0.15  # of own-image accuracy over shuffled-image accuracy


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """avgpool (no params tied to the budget, so one checkpoint serves V = 64 and 16)."""
  workdir = tmp_path_factory.mktemp("ocr")
  config = configs.load(os.path.join(
      configs.CONFIG_DIR, "train",
      "tiny.py:size=xs,compressor=avgpool,budget=64,task=ocr,steps=500,lr=3e-3,batch=16"))
  config.mesh.update(data=-1, num_devices=1)
  # XLA's default level, not the suite's 0: these 500 steps take longer to run than to compile.
  config.compiler_options = {"xla_backend_optimization_level": 3}
  state, _ = train.train(config, workdir / "run")
  model_dir = str(workdir / "model")
  checkpoints.save(model_dir, pretrained.read_run_config(workdir / "run").model, state.params)
  return workdir, model_dir


def _majority_baseline():
  """Accuracy of always answering the train split's most common answer."""
  train_answers = collections.Counter(r["answer"] for r in procedural.generate("ocr", "train"))
  majority = train_answers.most_common(1)[0][0]
  data = BENCHMARKS.get("ocr").read(num_examples=EVAL_EXAMPLES)
  return BENCHMARKS.get("ocr").score(
      {q: majority for q in data.annotations}, data)["accuracy"]


def _eval_config(shuffle_images=0):
  return configs.load(os.path.join(
      configs.CONFIG_DIR, "eval", f"builtin.py:benchmarks=ocr,num_examples={EVAL_EXAMPLES},"
      f"shuffle_images={shuffle_images}"))


def test_learns_ocr_and_results_resume(trained):
  workdir, model_dir = trained
  config = _eval_config()
  rows = harness.run(config, [model_dir], str(workdir / "eval"), budgets=[64, 16])
  assert [(r["visual_tokens"], r["benchmark"]) for r in rows] == [(64, "ocr"), (16, "ocr")]
  baseline = _majority_baseline()
  accuracy = rows[0]["accuracy"]
  print(f"ocr accuracy {accuracy:.3f} vs majority-answer baseline {baseline:.3f}")
  assert accuracy > baseline + 0.15
  assert rows[0]["n_scored"] == EVAL_EXAMPLES and rows[0]["inference_gflops"] > 0

  shuffled, = [r for r in harness.run(_eval_config(shuffle_images=1), [model_dir],
                                      str(workdir / "eval"), budgets=[64])
               if r["images"] == "shuffled"]
  print(f"with the images shuffled across questions: accuracy {shuffled['accuracy']:.3f}")
  assert accuracy > shuffled["accuracy"] + IMAGE_MARGIN

  with open(workdir / "eval" / "results.json") as f:
    written = json.load(f)
  assert len(written) == 3
  assert harness.run(config, [model_dir], str(workdir / "eval"), budgets=[64, 16]) == written
