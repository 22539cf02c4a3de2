"""Per-budget models beside one multi-budget model (modes `all` and `sample`), same data and steps.

Each model trains configs/train/tiny.py on a built-in task for --steps steps; the
per-budget ones once per V, the multi-budget ones once for all of --budgets. Every model
is then scored at each V it serves by the evaluation harness (accuracy on --examples
questions of the task) and by its answer-token loss on --loss-batches batches the
training stream does not hold (the data seed plus one). Training time: the whole
`train.train` call, compilation included.

  python benchmarks/multi_budget.py --out multi_budget.json
"""
import argparse
import os
import sys
import tempfile
import time

import common

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--budgets", type=common.parse_ints, default=(1, 4, 16, 64))
  parser.add_argument("--task", default="easy_vqa", help="a built-in task (tiny.py's task=)")
  parser.add_argument("--size", default="s", help="tiny_llm size")
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--examples", type=int, default=200, help="questions scored per V")
  parser.add_argument("--loss-batches", type=int, default=4)
  parser.add_argument("--out", help="write the results as JSON here")
  return parser.parse_args(argv)


def train_config(args, budgets, mode):
  from vlm_jax import configs
  budget_args = f"budgets={'+'.join(map(str, budgets))},budget_mode={mode}" if mode else \
      f"budget={budgets[0]}"
  config = configs.load(os.path.join(REPO, "configs", "train", "tiny.py") +
                        f":size={args.size},task={args.task},steps={args.steps},"
                        f"batch={args.batch},{budget_args}")
  config.checkpoint.update(every=args.steps, async_save=False)
  return config


def held_out_loss(config, model_config, params, budget, batches):
  """Mean answer-token loss at `budget` over `batches` batches of the data seed + 1."""
  import jax
  from vlm_jax import data, models
  from vlm_jax.data import config as data_config_lib
  from vlm_jax.train import loss, multi_budget, step
  data_config = config.data.copy_and_resolve_references()
  vision = model_config.vision
  data_config.update(seed=data_config.seed + 1, batch_size=config.batch_size,
                     image_size=vision.image_size, image_preprocess=vision.family,
                     image_token_id=model_config.image_token_id)
  model_config = multi_budget.at_budget(model_config, budget)
  model = models.build(model_config)
  loss_fn = jax.jit(lambda p, b: loss.vlm_loss(model, p, b, model_config.image_token_id,
                                               jax.random.PRNGKey(0)))
  iterator = iter(data.make_dataset(data_config_lib.resolve(data_config)))
  total = count = 0.0
  for _ in range(batches):
    host = next(iterator)
    s, c = loss_fn(params, {k: host[k] for k in step.BATCH_NDIMS})
    total, count = total + float(s), count + float(c)
  return total / count


def run(args):
  from vlm_jax import configs, train
  from vlm_jax.evaluate import harness
  eval_config = configs.load(os.path.join(REPO, "configs", "eval", "builtin.py") +
                             f":benchmarks={args.task},num_examples={args.examples}")
  runs = [(f"V={b}", (b,), None) for b in args.budgets]
  runs += [(f"multi ({mode})", args.budgets, mode) for mode in ("all", "sample")]
  rows = []
  with tempfile.TemporaryDirectory() as root:
    for name, budgets, mode in runs:
      config = train_config(args, budgets, mode)
      workdir = os.path.join(root, name.replace(" ", "_").replace("(", "").replace(")", ""))
      start = time.perf_counter()
      train.train(config, workdir)
      seconds = time.perf_counter() - start
      model_config, params = train.load_run(workdir)
      scored = harness.run(eval_config, [workdir], os.path.join(workdir, "eval"), list(budgets))
      for row in scored:
        v = row["visual_tokens"]
        rows.append(dict(model=name, visual_tokens=v, accuracy=row["accuracy"],
                         loss=held_out_loss(config, model_config, params, v,
                                            args.loss_batches),
                         train_seconds=seconds))
  return rows


def main(argv=None):
  args = parse_args(argv)
  rows = run(args)
  print(common.markdown_table(
      ["model", "V", "accuracy", "answer-token loss", "training time (s)"],
      [[r["model"], r["visual_tokens"], f"{r['accuracy']:.3f}", f"{r['loss']:.3f}",
        f"{r['train_seconds']:.0f}"] for r in rows]))
  common.write_json(args.out, dict(args=vars(args), rows=rows,
                                   load_average=common.load_average()))


if __name__ == "__main__":
  sys.exit(main())
