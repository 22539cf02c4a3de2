"""The built-in scaling study: tiny QueCC VLMs, LLM size x visual tokens x task, on a CPU.

`tiny.py:sizes=xs+s+m,budgets=1+4+16+64,tasks=facts+ocr,weights=3+2,steps=1500`.

Two task families that pull apart as the paper's do. `facts` (the reasoning family's
stand-in): one large shape, "fact k of the shape?" answered from a table over its 6
colours and 16 facts that the LLM must learn; the image gives one coarse fact that
any pooling keeps, so a larger LLM helps and more visual tokens hardly do. `ocr`: six
digits in a row of patch-sized cells, every one of which must survive the compression
(at V = 1 all six share one token, at V = 64 each has its own).

What makes it learn within a CPU's minutes (measured on 2-core Intel Xeon and AMD EPYC
VMs, see the README): one vision tower trained first on every visual token (`tower`,
`tower_steps`, with the smallest LLM) and then frozen and shared by every run, so each
run trains only compressor, projector and LLM; one multi-budget model per LLM size
serving every V (one budget sampled per step), so the grid costs one run per size;
digits drawn as fixed pixel glyphs in fixed cells (read after a few hundred steps, where
a font centred anywhere took thousands); a table of 96 facts keyed by colour alone,
which in the steps the 51k LLM learns in part (27–50 % at seeds 0 and 1), the 100k one
mostly (70–91 %) and the 404k one wholly (keyed by colour and kind, both larger sizes
stopped near 60 %: the tower told the kinds apart too poorly); facts three fifths of the
examples (with equal shares the 51k LLM's facts score moved by up to 8.5 points between
budgets, more than facts' V effect, and the fitted β sat at 0 on answer CE; with two
thirds every size learned every fact and the two smaller read no digits); a learning
rate per width (lr at width 48, lr·48/width for the others: at 2e-3 the 96-wide LLM did
not learn to read in 1,500 steps, at 1e-3 it leads the 48-wide one).
"""
import ml_collections

from vlm_jax.configs import parse_arg, preset
from vlm_jax.errors import BadValueError


def get_config(arg=None):
  arg = parse_arg(arg, sizes="xs+s+m", budgets="1+4+16+64", tasks="facts+ocr", weights="3+2",
                  steps=1500, batch=32, lr=2e-3, tower_steps=600, eval_examples=200, seed=0,
                  workers=2)
  sizes, tasks = arg.sizes.split("+"), arg.tasks.split("+")
  widths = {size: preset(f"tiny_llm:size={size}").llm.hidden_size for size in sizes}
  weights = [int(w) for w in arg.weights.split("+")] if arg.weights else [1] * len(tasks)
  if len(weights) != len(tasks):
    raise BadValueError(f"weights={arg.weights!r} needs one weight per task of "
                        f"tasks={arg.tasks!r} (or weights= for equal shares)")
  budgets = [int(v) for v in arg.budgets.split("+")]
  return ml_collections.ConfigDict(dict(
      sizes=sizes,
      budgets=budgets,
      tasks=tasks,
      task_weights=weights,
      # The shared tower: a small VLM on all 64 visual tokens; only its tower is kept.
      tower=f"tiny.py:size=xs,compressor=identity,budget=64,steps={arg.tower_steps},"
            f"batch={arg.batch},lr={arg.lr},seed={arg.seed}",
      # Each LLM size: a multi-budget QueCC VLM on the frozen tower.
      train=f"tiny.py:compressor=quecc,budgets={arg.budgets},budget_mode=sample,stage=2,"
            f"steps={arg.steps},batch={arg.batch},seed={arg.seed}",
      # lr is a 48-wide LLM's (size s); a wider one takes smaller steps, lr·48/width.
      learning_rates={size: arg.lr * 48 / width for size, width in widths.items()},
      # One sequence bucket: one compiled step per budget (the built-in prompts fit in 48).
      train_overrides=["data.max_length=48", "data.bucket_lengths=(48,)"],
      eval_examples=arg.eval_examples,
      workers=arg.workers,  # runs at a time, each in its own process
      bootstrap=200,
      # The frontier's budgets, in units of the smallest configuration's cost.
      budget_multiples=[1, 2, 4, 8, 16, 32],
  ))
