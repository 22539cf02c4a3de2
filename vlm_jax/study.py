"""The one-command scaling study: train, evaluate, fit and report, resuming on rerun.

For every LLM size x visual-token budget, one tiny VLM trained on a weighted mixture
of the tasks (runs/study/train/<size>_v<V>/, its model exported to model/) and
scored by the harness on each task's test split (runs/study/eval/<run>/), as the
paper trains one model per configuration and scores it on every benchmark;
several runs at a time in worker processes. The rows are gathered in
runs/study/results.json, then per task family the law Y = A·N^-α·V^-β + D is
fitted and the frontier found; everything lands in runs/study/report.md with one
figure per task.
"""
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os

import numpy as np
import tqdm

from vlm_jax import checkpoints, configs, flops, scaling, train
from vlm_jax.evaluate import harness, results
from vlm_jax.models import vision as vision_lib
from vlm_jax.train import pretrained

log = logging.getLogger(__name__)

# The report's tables and fits: accuracy over all questions, the unanswered ones wrong.
METRIC = "accuracy_all"


def _run_name(size, budget):
  return f"{size}_v{budget}"


def _train_config(config, size, budget):
  mixture = "+".join(f"{t}*{w}" for t, w in zip(config.tasks, config.task_weights))
  spec = f"{config.train},size={size},budget={budget},task={mixture}"
  return train.apply_overrides(configs.load(os.path.join(configs.CONFIG_DIR, "train", spec)),
                               config.train_overrides)


def train_run(config, size, budget, workdir):
  """Trains one configuration unless its exported model exists; -> the model folder."""
  run_dir = os.path.join(workdir, "train", _run_name(size, budget))
  model_dir = os.path.join(run_dir, "model")
  if os.path.exists(os.path.join(model_dir, "config.json")):
    return model_dir
  train_config = _train_config(config, size, budget)
  state, _ = train.train(train_config, run_dir)
  checkpoints.save(model_dir, pretrained.read_run_config(run_dir).model, state.params)
  return model_dir


def _eval_config(config):
  return configs.load(os.path.join(
      configs.CONFIG_DIR, "eval", f"builtin.py:benchmarks={'+'.join(config.tasks)},"
      f"num_examples={config.eval_examples}"))


def run_one(config, size, budget, workdir):
  """Trains (unless done) and evaluates (unless done) one configuration; -> its result rows.

  The run's printed metrics and progress bars go to <workdir>/logs/<run>.log, not
  under the study's bar.
  """
  name = _run_name(size, budget)
  os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
  with open(os.path.join(workdir, "logs", f"{name}.log"), "a", buffering=1) as log_file, \
      contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
    model_dir = train_run(config, size, budget, workdir)
    return harness.run(_eval_config(config), [model_dir],
                       os.path.join(workdir, "eval", name))


def _quiet_worker():
  logging.getLogger().setLevel(logging.ERROR)


def run(config, workdir):
  """Runs (or resumes) the whole study, `config.workers` runs at a time; -> report.md."""
  # The costliest (largest LLM, most tokens) first: the workers then finish together.
  runs = [(s, v) for s in reversed(config.sizes) for v in sorted(config.budgets, reverse=True)]
  rows = []
  with concurrent.futures.ProcessPoolExecutor(
      config.workers, mp_context=multiprocessing.get_context("spawn"),
      initializer=_quiet_worker) as pool:
    futures = [pool.submit(run_one, config, *r, workdir) for r in runs]
    try:
      for future in tqdm.tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                              desc="study", unit="run"):
        rows += future.result()
    except BaseException:
      pool.shutdown(cancel_futures=True)  # a failed run stops the study, not just its worker
      raise
  rows.sort(key=lambda r: (r["benchmark"], r["llm_params_b"], r["visual_tokens"]))
  results.write(workdir, rows)
  return write_report(config, rows, workdir)


def write_report(config, rows, workdir):
  lines = ["# Scaling study on the built-in tasks", "",
           f"Tiny QueCC VLMs ({_setup_line(config)}), each trained from scratch on a mixture "
           f"of {_mixture_line(config)} and scored on each task by normalized exact match on "
           "held-out questions, a question left unanswered counting as wrong.", ""]
  lines += _incomplete_section(rows, workdir)
  for task in config.tasks:
    task_rows = [r for r in rows if r["benchmark"] == task]
    lines += _task_section(config, task, task_rows, workdir)
  path = os.path.join(workdir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")
  return path


def _setup_line(config):
  train_config = _train_config(config, config.sizes[0], config.budgets[0])
  sizes = ", ".join(
      f"`{s}` {flops.llm_params(_train_config(config, s, 1).model):,}"
      for s in config.sizes)
  grid = vision_lib.grid_size(train_config.model.vision)
  return (f"LLM sizes {sizes} params; V ∈ {{{', '.join(map(str, config.budgets))}}} of the "
          f"tower's {grid}×{grid} patches; {train_config.total_steps} steps of batch "
          f"{train_config.batch_size}")


def _mixture_line(config):
  total = sum(config.task_weights)
  return " and ".join(f"{t} ({w}/{total})" for t, w in zip(config.tasks, config.task_weights))


def _incomplete_section(rows, workdir):
  """The runs with unanswered or skipped questions, or a line saying there are none."""
  listed = scaling.incomplete_rows(rows)
  if not listed:
    return ["Every question of every run was answered.", ""]
  lines = ["## Unanswered or skipped questions", "",
           "The tables and fits below count these as wrong:", "",
           "| run | task | V | unanswered | of questions | skipped by the data pipeline |",
           "|---|---|---:|---:|---:|---:|"]
  for row in listed:
    lines.append(f"| {os.path.relpath(row['checkpoint'], workdir)} | {row['benchmark']} | "
                 f"{row['visual_tokens']:g} | {row['n_unanswered']} | {row['n_questions']} | "
                 f"{row['n_skipped']} |")
  return lines + [""]


def _grid_tokens(config):
  """g²: the most visual tokens the tower gives."""
  model = _train_config(config, config.sizes[0], config.budgets[0]).model
  return vision_lib.grid_size(model.vision) ** 2


def _task_section(config, task, rows, workdir):
  lines = [f"## {task}", ""]
  sizes = sorted({r["llm_params_b"] for r in rows})
  budgets = sorted({r["visual_tokens"] for r in rows})
  accuracy = {(r["llm_params_b"], r["visual_tokens"]): scaling.row_metric(r, METRIC)
              for r in rows}
  lines += ["Accuracy (%) over all questions by LLM parameters (rows) and visual tokens V "
            "(columns):", "",
            "| LLM params | " + " | ".join(f"V={v}" for v in budgets) + " |",
            "|---:|" + "---:|" * len(budgets)]
  for n in sizes:
    lines.append(f"| {n * 1e9:,.0f} | " + " | ".join(
        f"{100 * accuracy[(n, v)]:.1f}" if (n, v) in accuracy else "–" for v in budgets) + " |")
  points = scaling.points_from_rows(rows, metric=METRIC)
  if len(points) < 4:
    return lines + ["", f"{len(points)} configurations: too few to fit the law's 4 parameters.", ""]
  text_tokens = float(np.mean([r["text_tokens"] for r in rows]))
  fit = scaling.fit_scaling_law(points, bootstrap=config.bootstrap)
  fit.save(os.path.join(workdir, f"{task}_fit.json"))
  figure = scaling.plot_frontier(points, fit, os.path.join(workdir, f"{task}_frontier.png"),
                                 text_tokens=text_tokens)
  v_star = scaling.optimal_visual_tokens(fit, text_tokens)
  lines += ["", f"Fit of Y = A·N^-α·V^-β + D (N in billions, {fit.n_points} points, "
            f"RMSE {fit.rmse:.4f}):", "",
            "| parameter | value | 95% interval |", "|---|---:|---|"]
  for name in ("A", "alpha", "beta", "D"):
    low, high = getattr(fit, f"{name}_ci") or (float("nan"),) * 2
    lines.append(f"| {name} | {getattr(fit, name):.4g} | [{low:.4g}, {high:.4g}] |")
  cheapest = scaling.paper_inference_flops(min(sizes), min(budgets), text_tokens)
  budgets_flops = [m * cheapest for m in config.budget_multiples]
  measured = scaling.measured_frontier(points, budgets_flops, text_tokens)
  fitted = scaling.frontier(fit, budgets_flops, text_tokens, llm_params_b=sizes,
                            v_max=_grid_tokens(config))
  v_star_text = (f"closed-form V* = Q·β/(α−β) = {v_star:.3g}" if np.isfinite(v_star) else
                 "no finite V* (α ≤ β: the fit says tokens pay at least as well as parameters)")
  lines += ["", f"Frontier at Q = {text_tokens:.0f} text tokens (cost 2·N·(Q+V)); "
            f"{v_star_text}:", "",
            "| budget (FLOPs) | measured best (N, V) | accuracy | fitted best (N, V) | "
            "predicted accuracy |", "|---:|---|---:|---|---:|"]
  for budget, m, f in zip(budgets_flops, measured, fitted):
    lines.append(f"| {budget:.3g} | {_point(m)} | {_acc(m)} | {_point(f)} | {_acc(f)} |")
  lines += ["", f"![{task} frontier]({os.path.basename(figure)})", ""]
  return lines


def _point(p):
  return "–" if p is None else f"({p.llm_params_b * 1e9:,.0f}, {p.visual_tokens:.3g})"


def _acc(p):
  return "–" if p is None else f"{100 * p.accuracy:.1f}"
