"""The README's train-then-eval commands work as written: `vlm-jax eval --checkpoints`
takes the training workdir (its latest step, or DIR@STEP).

The commands are read from README.md and run from a scratch working directory; the only
additions are overrides that shorten them (few steps, few questions, a quicker compile).
"""
import json
import os
import shlex

import pytest

from vlm_jax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHORTER_TRAIN = ["--set", "total_steps=2", "--set", "batch_size=8", "--set", "checkpoint.every=1"]
SHORTER_EVAL = ["--set", "benchmark_args.easy_vqa.num_examples=6"]


def readme_command(prefix):
  """The README line that starts with `prefix` (a fenced shell command), as argv."""
  with open(os.path.join(REPO, "README.md")) as f:
    lines = [line.strip() for line in f if line.startswith(prefix)]
  assert len(lines) == 1, f"expected one README line starting with {prefix!r}, got {lines}"
  argv = shlex.split(lines[0])
  assert argv[0] == "vlm-jax"
  return argv[1:]


@pytest.fixture
def scratch(tmp_path, monkeypatch):
  """A working directory with the repository's configs/, as a user's checkout has."""
  os.symlink(os.path.join(REPO, "configs"), tmp_path / "configs")
  monkeypatch.chdir(tmp_path)
  return tmp_path


def test_readme_train_then_eval(scratch):
  train = readme_command("vlm-jax train --config configs/train/tiny.py")
  evaluate = readme_command("vlm-jax eval --config configs/eval/builtin.py")
  workdir = train[train.index("--workdir") + 1]
  assert evaluate[evaluate.index("--checkpoints") + 1] == workdir

  assert cli.main(train + SHORTER_TRAIN) == 0
  assert cli.main(evaluate + SHORTER_EVAL) == 0
  eval_dir = scratch / evaluate[evaluate.index("--workdir") + 1]
  rows = json.loads((eval_dir / "results.json").read_text())
  assert [(r["checkpoint"], r["benchmark"], r["n_scored"]) for r in rows] == [
      (workdir, "easy_vqa", 6)]

  # An earlier step of the same run is another checkpoint, and a step not saved an error.
  assert cli.main([*evaluate, *SHORTER_EVAL[:2], "--checkpoints", f"{workdir}@1"]) == 0
  rows = json.loads((eval_dir / "results.json").read_text())
  assert [r["checkpoint"] for r in rows] == [workdir, f"{workdir}@1"]
  assert cli.main([*evaluate, *SHORTER_EVAL[:2], "--checkpoints", f"{workdir}@x"]) == 2
