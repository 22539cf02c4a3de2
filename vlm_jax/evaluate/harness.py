"""The evaluation sweep: every checkpoint x visual-token budget x benchmark, resumable.

Each (checkpoint, budget, benchmark) becomes one row of results.json: accuracy and
the scorer's sub-metrics, LLM params N, V, mean text tokens Q, inference FLOPs, and
what was scored, left unanswered, unparsed or skipped (by name). Rows already in
results.json are not run again.
"""
import copy
import logging
import os
import time

import flax.linen as nn
import jax
import numpy as np
import tqdm

from vlm_jax import checkpoints as checkpoints_lib
from vlm_jax import errors, flops, models
from vlm_jax.data import load_tokenizer, make_eval_examples
from vlm_jax.data import config as data_config_lib
from vlm_jax.data import processor as processor_lib
from vlm_jax.data.templates import get_template
from vlm_jax.evaluate import results, writers
from vlm_jax.evaluate.registry import BENCHMARKS
from vlm_jax.generate import Generator
from vlm_jax.train import apply_overrides, pretrained

log = logging.getLogger(__name__)

# Server-scored benchmarks: the writer, the reader argument naming its question file, the suffix.
SUBMISSIONS = {"vqav2": (writers.write_vqav2_submission, "questions_file", ".json"),
               "vizwiz": (writers.write_vizwiz_submission, "questions_file", ".json"),
               "mmbench": (writers.write_mmbench_submission, "tsv_file", ".xlsx")}


def with_budget(config, params, budget):
  """The model config at `budget` visual tokens; an error naming the first param whose
  shape the budget changes (such compressors need one checkpoint per budget)."""
  config = copy.deepcopy(config)
  config.compressor.budget = budget
  expected = jax.tree_util.tree_flatten_with_path(nn.unbox(models.abstract_params(config)))[0]
  have = dict(jax.tree_util.tree_flatten_with_path(params)[0])
  for path, leaf in expected:
    if have[path].shape != leaf.shape:
      raise errors.BadValueError(
          f"budget {budget}: param {jax.tree_util.keystr(path)} would have shape "
          f"{leaf.shape}, the checkpoint's is {have[path].shape}")
  return config


def _records(data, benchmark):
  """A benchmark's examples as one-question records for the data pipeline."""
  return [{"id": e["question_id"], "image": e["image"], "source": benchmark,
           "conversations": [{"from": "human", "value": "<image>\n" + e["prompt"]}]}
          for e in data.examples]


def load_model(spec):
  """(model config, float32 params) of `spec`: a converted or exported model folder, or a
  training workdir at its latest checkpoint or at `DIR@STEP`."""
  path, at, step = spec.rpartition("@") if "@" in spec else (spec, "", "")
  if pretrained.is_training_run(path):
    if at and not step.isdigit():
      raise errors.BadValueError(f"{spec}: the step after @ must be a number, got {step!r}")
    return pretrained.load_run(path, int(step) if at else None)
  if at:
    raise errors.BadValueError(f"{spec}: @STEP names a step of a training workdir, and {path} "
                               "is not one")
  return checkpoints_lib.load(path)


def _data_config(config, model_config, source, explicit):
  """The eval pipeline's data config: config.data over the checkpoint's processor."""
  data = processor_lib.merge(config.data.copy_and_resolve_references(),
                             model_config.get("processor"), source, explicit)
  if data.tokenizer is None:
    raise errors.BadValueError(f"{source} carries no tokenizer: name one with "
                               "--set data.tokenizer=FOLDER")
  if data.image_preprocess is None:
    data.image_preprocess = model_config.vision.family
  data.update(image_size=model_config.vision.image_size, max_length=max(data.bucket_lengths),
              image_token_id=model_config.image_token_id, padding_side="left")
  return data_config_lib.resolve(data)


def _stop_ids(tokenizer, template, model_config):
  """End-of-sequence ids: the tokenizer's eos, the checkpoint's, and the template's end of
  turn if one token."""
  end = tokenizer.encode(template.end_of_turn) if template.end_of_turn else []
  eos = model_config.get("processor", {}).get("eos_token_ids") or []
  return sorted({tokenizer.eos_id, *eos, *(end if len(end) == 1 else [])} - {None})


def generate_answers(generator, params, records, data_config, desc):
  """{question_id: answer text}, the mean text tokens per prompt, and skip counts."""
  loader = make_eval_examples(data_config, records=records)
  stop = set(generator.settings.eos_ids)
  answers, text_tokens = {}, []
  iterator = iter(loader)
  with tqdm.tqdm(total=len(records), desc=desc, unit="ex") as bar:
    for batch in iterator:
      tokens = generator(params, batch["input_ids"], batch["attention_mask"],
                         pixels=batch["pixels"], question_ids=batch["question_ids"],
                         question_mask=batch["question_mask"])
      for row, question_id in enumerate(batch["question_id"]):
        if not batch["valid"][row]:
          continue
        ids = list(tokens[row])
        ids = ids[:next((i for i, t in enumerate(ids) if t in stop), len(ids))]
        answers[question_id] = loader.tokenizer.decode(ids, skip_special_tokens=True).strip()
        text_tokens.append(int(batch["attention_mask"][row].sum()) - 1)  # less the placeholder
      bar.update(int(np.sum(batch["valid"])))
  skipped = {k: int(v) for k, v in iterator.counters.items() if k != "truncated" and v}
  iterator.close()
  return answers, float(np.mean(text_tokens)) if text_tokens else 0.0, skipped


def _row(checkpoint, name, config, metrics, text_tokens, skipped, data, answers_file):
  budget = config.compressor.budget
  cost = flops.inference_flops(config, text_tokens=text_tokens, visual_tokens=budget)
  return {
      "checkpoint": checkpoint, "benchmark": name,
      "llm_params_b": cost["llm_params"] / 1e9, "visual_tokens": budget,
      "text_tokens": text_tokens, "inference_gflops": cost["total"] / 1e9,
      "paper_gflops": cost["paper"] / 1e9, "accuracy": metrics["accuracy"],
      # A test split's placeholder metrics (no annotations) lack accuracy_all.
      "accuracy_all": metrics.get("accuracy_all", float("nan")),
      "n_scored": metrics["n_scored"], "n_unanswered": metrics["n_unanswered"],
      "n_unparsed": metrics["n_unparsed"], "n_skipped": sum(skipped.values()),
      "skipped": skipped, "missing_images": data.missing_images,
      "unknown_ids": metrics.get("unknown_ids", []), "answers_file": answers_file,
      "metrics": {k: v for k, v in metrics.items() if k not in ("unknown_ids",)},
  }


def _score(benchmark, answers, data):
  if data.annotations is None:  # a test split: only the submission file scores it
    return {"accuracy": float("nan"), "n_scored": 0, "n_unanswered": 0, "n_unparsed": 0}
  return benchmark.score(answers, data)


def _write_submission(name, benchmark, args, answers, path):
  writer, source, suffix = SUBMISSIONS[name]
  source_file = args.get(source) or os.path.join(args["root"], benchmark.layout[source])
  coverage = writer(path + suffix, source_file, answers)
  log.info("%s submission: %s (%s)", name, path + suffix, coverage)


def run(config, checkpoints, workdir, budgets=None, overrides=()):
  """Evaluates every checkpoint at every budget (default: its own) on config.benchmarks.

  config: `benchmarks` (names), `benchmark_args` ({name: reader arguments, e.g. root}),
  `data` (batch_size, bucket_lengths of the eval pipeline; tokenizer, template and image
  preprocessing unset to take each checkpoint's own). checkpoints: load_model specs.
  overrides: `KEY=VALUE` items set on config; the data keys among them win over the
  checkpoints' processors.
  """
  config = copy.deepcopy(config)
  data = data_config_lib.default_config()
  data.update(config.get("data", {}))
  config.data = data
  with errors.user_input():
    apply_overrides(config, overrides)
  explicit = processor_lib.explicit_data_keys(overrides)
  rows = results.load(workdir)
  done = {results.row_key(r) for r in rows}
  benchmarks = {}
  for name in config.benchmarks:
    benchmark, args = BENCHMARKS.get(name), dict(config.benchmark_args.get(name, {}))
    data = benchmark.read(**args)
    if data.missing_images:
      log.warning("%s: %d images missing, their questions count as unanswered: %s", name,
                  len(data.missing_images), ", ".join(map(str, data.missing_images[:10])))
    benchmarks[name] = (benchmark, args, data)
  for checkpoint in map(str, checkpoints):
    model_config, params = load_model(checkpoint)
    data_config = _data_config(config, model_config, checkpoint, explicit)
    tokenizer = load_tokenizer(data_config.tokenizer)
    processor_lib.check_vocabulary(tokenizer, model_config.llm.vocab_size, checkpoint)
    stop_ids = _stop_ids(tokenizer, get_template(data_config.template, tokenizer,
                                                 data_config.image_token), model_config)
    for budget in budgets or [model_config.compressor.budget]:
      todo = [n for n in benchmarks if (checkpoint, budget, n) not in done]
      if not todo:
        continue
      config_v = with_budget(model_config, params, budget)
      for name in todo:
        benchmark, args, data = benchmarks[name]
        start = time.time()
        generator = Generator(config_v, max_new_tokens=benchmark.max_new_tokens,
                              eos_id=stop_ids, pad_id=tokenizer.pad_id)
        answers, text_tokens, skipped = generate_answers(
            generator, params, _records(data, name), data_config,
            desc=f"{_slug(checkpoint)} V={budget} {name}")
        stem = os.path.join(workdir, "answers", f"{_slug(checkpoint)}_v{budget}_{name}")
        writers.write_answers_jsonl(
            stem + ".jsonl", [{"question_id": e["question_id"], "prompt": e["prompt"],
                               "text": answers[e["question_id"]]}
                              for e in data.examples if e["question_id"] in answers],
            model_id=checkpoint)
        if name in SUBMISSIONS:
          _write_submission(name, benchmark, args, answers, stem)
        row = _row(checkpoint, name, config_v, _score(benchmark, answers, data), text_tokens,
                   skipped, data, stem + ".jsonl")
        rows.append(row)
        results.write(workdir, rows)
        print(f"{name} V={budget}: accuracy {row['accuracy']:.4f} over {row['n_scored']} "
              f"scored; {row['n_unanswered']} unanswered, {row['n_unparsed']} unparsed, "
              f"{row['n_skipped']} skipped ({time.time() - start:.0f}s)")
  return rows


def _slug(path):
  return os.path.basename(path.rstrip("/")).replace(os.sep, "_")
