"""The built-in scaling study: tiny QueCC VLMs, LLM size x visual tokens x task, on a CPU.

`tiny.py:sizes=xs+s+m,budgets=1+4+16+64,tasks=easy_vqa+ocr,weights=1+7,steps=1000`.

One model per (size, budget), trained on a mixture of the task families (`weights`:
records of each per round) and scored on each: easy-vqa (coarse: one colour, one
shape; its answer priors are learned fast) and the procedural `ocr` reading of a
3-4 digit number (fine-grained: every digit must survive the compression, the
tokens-hungry contrast; it needs most of the steps).
"""
import ml_collections

from vlm_jax.configs import parse_arg, preset
from vlm_jax.errors import BadValueError


def get_config(arg=None):
  arg = parse_arg(arg, sizes="xs+s+m", budgets="1+4+16+64", tasks="easy_vqa+ocr", weights="1+7",
                  compressor="quecc", steps=1000, batch=32, lr=2e-3, eval_examples=200, seed=0,
                  workers=2)
  sizes, tasks = arg.sizes.split("+"), arg.tasks.split("+")
  for size in sizes:
    preset(f"tiny_llm:size={size}")  # an unknown size fails here, not in a run's worker
  weights = [int(w) for w in arg.weights.split("+")] if arg.weights else [1] * len(tasks)
  if len(weights) != len(tasks):
    raise BadValueError(f"weights={arg.weights!r} needs one weight per task of "
                        f"tasks={arg.tasks!r} (or weights= for equal shares)")
  return ml_collections.ConfigDict(dict(
      sizes=sizes,
      budgets=[int(v) for v in arg.budgets.split("+")],
      tasks=tasks,
      task_weights=weights,
      train=f"tiny.py:compressor={arg.compressor},steps={arg.steps},batch={arg.batch},"
            f"lr={arg.lr},seed={arg.seed}",
      # One sequence bucket: one compiled step per run (the built-in prompts fit in 40).
      train_overrides=["data.max_length=40", "data.bucket_lengths=(40,)"],
      eval_examples=arg.eval_examples,
      workers=arg.workers,  # runs at a time, each in its own process
      bootstrap=200,
      # The frontier's budgets, in units of the smallest configuration's cost.
      budget_multiples=[1, 2, 4, 8, 16, 32],
  ))
