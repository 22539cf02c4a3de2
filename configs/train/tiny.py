"""Tiny VLMs on the built-in data, for a CPU: `tiny.py:size=s,budget=16,task=easy_vqa`.

size: the tiny_llm size (xs | s | m | l); budget: visual tokens V, a square up
to the tiny tower's 8x8 grid (64: all of them, as `compressor=identity` needs);
compressor: quecc | avgpool | tokenpacker | resampler | identity; task:
easy_vqa or a procedural task (counting | spatial | lookup | facts | ocr), or
several joined by `+` for a mixture, each with an optional integer weight
(`easy_vqa+ocr*3`: three ocr records to every easy_vqa one); stage: `all` (every
part trained from scratch, the default), 1 (compressor and projector only) or 2
(and the LLM); steps, batch (global), lr, seed; budgets: several budgets joined by `+`
(`1+4+16+64`) for one multi-budget model, trained at each as budget_mode says: `all`
(every example at every budget) or `sample` (one budget per step); budget is then
the largest, the one it evaluates at by default.
"""
from vlm_jax import train
from vlm_jax.configs import one_of, parse_arg, preset
from vlm_jax.errors import BadValueError

STAGE_GROUPS = {
    "all": ("vision", "compressor", "projector", "llm"),
    "1": ("compressor", "projector"),
    "2": ("compressor", "projector", "llm"),
}


def get_config(arg=None):
  arg = parse_arg(arg, size="s", budget=16, compressor="quecc", task="easy_vqa", stage="all",
                  steps=1000, batch=32, lr=1e-3, seed=0, budgets="", budget_mode="all")
  one_of("stage", arg.stage, STAGE_GROUPS)
  budgets = tuple(_budget(b) for b in filter(None, arg.budgets.split("+")))
  config = train.default_config()
  config.model = preset(f"vlm:llm=tiny_llm:size={arg.size},vision=tiny_vision,"
                        f"compressor={arg.compressor},"
                        f"budget={max(budgets) if budgets else arg.budget}")
  config.model.compressor.budgets = budgets
  config.multi_budget.mode = one_of("budget_mode", arg.budget_mode, train.MULTI_BUDGET_MODES)
  tasks = [t.split("*") for t in arg.task.split("+")]
  if len(tasks) > 1:
    config.data.update(source="mixture", mixture=tuple(t[0] for t in tasks),
                       mixture_weights=tuple(int(t[1]) if len(t) > 1 else 1 for t in tasks))
  elif tasks[0][0] == "easy_vqa":
    config.data.update(source="easy_vqa")
  else:
    config.data.update(source="procedural", task=tasks[0][0])
  config.data.update(max_length=64, bucket_lengths=(16, 32, 64), seed=arg.seed)
  # The tiny vocabulary's logits are small (8,192 positions of 1,024 float32: 32 MiB), so
  # every batch here is one chunk: split in two (size l, batch 32, at 2,048 positions per
  # chunk) the recomputed head and the chunk loop cost 7-12 % of the step on a CPU.
  config.update(seed=arg.seed, batch_size=arg.batch, total_steps=arg.steps, log_every=50,
                loss_chunk_size=8192)
  config.optim.learning_rates.update(
      {g: arg.lr if g in STAGE_GROUPS[arg.stage] else 0.0 for g in train.PARAM_GROUPS})
  config.checkpoint.update(every=500, keep=2)
  return config


def _budget(text):
  if not text.isdigit():
    raise BadValueError(f"budgets takes visual-token counts joined by '+' (1+4+16+64), "
                        f"got {text!r}")
  return int(text)
