"""The one-command scaling study: train, evaluate, fit and report, resuming on rerun.

First one vision tower is trained (runs/study/tower/: a small VLM on every visual
token, its tower kept), then frozen and shared by every run, as the paper's VLMs
share a pretrained encoder. Per LLM size one multi-budget QueCC VLM is trained on a
weighted mixture of the task families (runs/study/train/<size>/, its model exported
to model/) and scored by the harness at every visual-token budget V on each
family's test split, twice: with each question's own image and with the images
shuffled across questions (the control that tells whether the model reads the
image). Several runs go at a time in worker processes. The rows are gathered in
runs/study/results.json; per family the law Y = A·N^-α·V^-β + D is fitted on error
and on answer-token cross-entropy and the frontier found (vlm_jax.study_report).
"""
import concurrent.futures
import contextlib
import logging
import multiprocessing
import os

import jax
import ml_collections
import tqdm

from vlm_jax import checkpoints, configs, flops, study_report, train
from vlm_jax.evaluate import harness, results
from vlm_jax.models import vision as vision_lib
from vlm_jax.train import pretrained

TOWER = "tower"


def _train_config(config, spec, overrides=()):
  mixture = "+".join(f"{t}*{w}" for t, w in zip(config.tasks, config.task_weights))
  loaded = configs.load(os.path.join(configs.CONFIG_DIR, "train", f"{spec},task={mixture}"))
  return train.apply_overrides(loaded, [*config.train_overrides, *overrides])


def _run_config(config, size, workdir):
  tower = os.path.join(os.path.abspath(workdir), TOWER, "model")
  return _train_config(config, _run_spec(config, size), [f"init_vision_from={tower}"])


def _run_spec(config, size):
  return f"{config.train},size={size},lr={config.learning_rates[size]}"


def _llm_params(config, size):
  return flops.llm_params(_train_config(config, _run_spec(config, size)).model)


@contextlib.contextmanager
def _log_to(workdir, name):
  """Sends a run's printed metrics and progress bars to <workdir>/logs/<name>.log."""
  os.makedirs(os.path.join(workdir, "logs"), exist_ok=True)
  with open(os.path.join(workdir, "logs", f"{name}.log"), "a", buffering=1) as log_file, \
      contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file):
    yield


def _trained(train_config, run_dir, export):
  """Trains `train_config` in run_dir unless `export` (run config, params) -> a folder
  exists; -> that folder."""
  model_dir = os.path.join(run_dir, "model")
  if not os.path.exists(os.path.join(model_dir, "config.json")):
    state, _ = train.train(train_config, run_dir)
    checkpoints.save(model_dir, *export(pretrained.read_run_config(run_dir).model, state.params))
  return model_dir


def train_tower(config, workdir):
  """The shared vision tower: a VLM trained on every visual token, its tower kept as a
  `vision` checkpoint in <workdir>/tower/model; -> that folder."""
  def vision_only(model, params):
    kept = ml_collections.ConfigDict(dict(kind="vision", dtype=model.dtype, vision=model.vision))
    return kept, params["vision"]

  with _log_to(workdir, TOWER):
    return _trained(_train_config(config, config.tower), os.path.join(workdir, TOWER),
                    vision_only)


def run_one(config, size, workdir):
  """Trains (unless done) and evaluates (unless done) one LLM size at every budget, with
  own and shuffled images; -> its result rows, each with `accuracy_all_shuffled`."""
  with _log_to(workdir, size):
    model_dir = _trained(_run_config(config, size, workdir),
                         os.path.join(workdir, "train", size), lambda model, p: (model, p))
    own, shuffled = (harness.run(_eval_config(config, images), [model_dir],
                                 os.path.join(workdir, "eval", images, size),
                                 budgets=config.budgets)
                     for images in ("own", "shuffled"))
  control = {(r["benchmark"], r["visual_tokens"]): r[study_report.ERROR.metric] for r in shuffled}
  return [{**r, "llm_size": size,
           "accuracy_all_shuffled": control[(r["benchmark"], r["visual_tokens"])]} for r in own]


def _eval_config(config, images):
  shuffled = int(images == "shuffled")
  return configs.load(os.path.join(
      configs.CONFIG_DIR, "eval", f"builtin.py:benchmarks={'+'.join(config.tasks)},"
      f"num_examples={config.eval_examples},answer_loss={1 - shuffled},"
      f"shuffle_images={shuffled}"))


def _worker(workdir):
  logging.getLogger().setLevel(logging.ERROR)
  _cache_compiles(workdir)


def _cache_compiles(workdir):
  """Keeps every compiled program in <workdir>/compiled: an evaluation compiles the same
  prefill and decode for each task and again with shuffled images, and a rerun all again."""
  jax.config.update("jax_compilation_cache_dir", os.path.join(os.path.abspath(workdir),
                                                              "compiled"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def run(config, workdir):
  """Runs (or resumes) the whole study, `config.workers` runs at a time; -> report.md."""
  sizes = sorted(config.sizes, key=lambda s: -_llm_params(config, s))  # the costliest first
  rows = []
  with concurrent.futures.ProcessPoolExecutor(
      config.workers, mp_context=multiprocessing.get_context("spawn"),
      initializer=_worker, initargs=(workdir,)) as pool:
    try:
      print(f"study: training the shared vision tower (log: {workdir}/logs/{TOWER}.log)")
      pool.submit(train_tower, config, workdir).result()
      futures = [pool.submit(run_one, config, size, workdir) for size in sizes]
      for future in tqdm.tqdm(concurrent.futures.as_completed(futures), total=len(futures),
                              desc="study", unit="LLM size"):
        rows += future.result()
    except BaseException:
      pool.shutdown(cancel_futures=True)  # a failed run stops the study, not just its worker
      raise
  rows.sort(key=lambda r: (r["benchmark"], r["llm_params_b"], r["visual_tokens"]))
  results.write(workdir, rows)
  return study_report.write(_report_config(config), rows, workdir, _setup(config))


def _report_config(config):
  model = _train_config(config, _run_spec(config, config.sizes[0])).model
  return ml_collections.ConfigDict(dict(
      tasks=list(config.tasks), bootstrap=config.bootstrap,
      budget_multiples=list(config.budget_multiples),
      grid_tokens=vision_lib.grid_size(model.vision) ** 2))


def _setup(config):
  """The report's paragraph on the models and their training."""
  tower, run = _train_config(config, config.tower), _run_config(config, config.sizes[0], ".")
  sizes = ", ".join(f"`{s}` ({_llm_params(config, s):,} params, learning rate "
                    f"{config.learning_rates[s]:g})" for s in config.sizes)
  total = sum(config.task_weights)
  mixture = " and ".join(f"{t} ({w}/{total})" for t, w in zip(config.tasks, config.task_weights))
  grid = vision_lib.grid_size(run.model.vision)
  return (f"One vision tower ({grid}×{grid} patches) trained for {tower.total_steps} steps "
          f"of batch {tower.batch_size} in a small VLM on every visual token, then frozen "
          f"and shared. Per LLM size ({sizes}) one QueCC VLM serving every V ∈ "
          f"{{{', '.join(map(str, config.budgets))}}} (multi-budget, one budget per step), "
          f"its compressor, projector and LLM trained from scratch for {run.total_steps} "
          f"steps of batch {run.batch_size} on a mixture of {mixture}. Scored on each "
          f"family's held-out questions by normalized exact match, a question left "
          f"unanswered counting as wrong, and again with the images shuffled across "
          f"questions.")
