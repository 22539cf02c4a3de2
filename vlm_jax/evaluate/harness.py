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
from vlm_jax import flops, models
from vlm_jax.data import TEMPLATES, load_tokenizer, make_eval_examples
from vlm_jax.data import config as data_config_lib
from vlm_jax.evaluate import results, writers
from vlm_jax.evaluate.registry import BENCHMARKS
from vlm_jax.generate import Generator

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
      raise ValueError(f"budget {budget}: param {jax.tree_util.keystr(path)} would have shape "
                       f"{leaf.shape}, the checkpoint's is {have[path].shape}")
  return config


def _records(data, benchmark):
  """A benchmark's examples as one-question records for the data pipeline."""
  return [{"id": e["question_id"], "image": e["image"], "source": benchmark,
           "conversations": [{"from": "human", "value": "<image>\n" + e["prompt"]}]}
          for e in data.examples]


def _data_config(config, model_config):
  data = data_config_lib.default_config()
  data.update(config.data)
  data.update(image_size=model_config.vision.image_size, max_length=max(data.bucket_lengths),
              image_preprocess=model_config.vision.family,
              image_token_id=model_config.image_token_id, padding_side="left")
  return data


def _stop_ids(tokenizer, template):
  """End-of-sequence ids: the tokenizer's eos and the template's end of turn if one token."""
  end = tokenizer.encode(template.end_of_turn)
  return sorted({tokenizer.eos_id, *(end if len(end) == 1 else [])})


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


def run(config, checkpoints, workdir, budgets=None):
  """Evaluates every checkpoint at every budget (default: its own) on config.benchmarks.

  config: `benchmarks` (names), `benchmark_args` ({name: reader arguments, e.g. root}),
  `data` (tokenizer, template, batch_size, bucket_lengths of the eval pipeline).
  """
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
    model_config, params = checkpoints_lib.load(checkpoint)
    for budget in budgets or [model_config.compressor.budget]:
      todo = [n for n in benchmarks if (checkpoint, budget, n) not in done]
      if not todo:
        continue
      config_v = with_budget(model_config, params, budget)
      data_config = _data_config(config, config_v)
      tokenizer = load_tokenizer(data_config.tokenizer)
      stop_ids = _stop_ids(tokenizer, TEMPLATES.get(data_config.template))
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
