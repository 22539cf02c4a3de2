"""The evaluation sweep: every checkpoint x visual-token budget x benchmark, resumable.

Each (checkpoint, budget, benchmark) becomes one row of results.json: accuracy and
the scorer's sub-metrics, LLM params N, V, mean text tokens Q, inference FLOPs, what
was scored, left unanswered, unparsed or skipped (by name), questions and generated
tokens per second, and `images`: "own", or "shuffled" where the config's
`shuffle_images` asked each question about another question's image (the control that
tells whether a model uses the image; `shuffled_images`). With `answer_loss`, a row also
holds the answer-token cross-entropy of the reference answers, `answer_ce` (nats per
token) and `answer_ce_tokens` (vlm_jax.evaluate.answer_loss). Rows already in
results.json are not run again (results.row_key: own and shuffled images are rows of
their own); a row without answer_ce gets it added when answer_loss asks for it.

It runs on the config's (data, fsdp, tensor) mesh: params restored onto their shardings,
prompts batched over data x fsdp, generation by the programs `vlm-jax compile` compiles
(vlm_jax.generate.sharded). On several processes each answers its share of the questions
(vlm_jax.evaluate.shares), and process 0 alone writes answers and results.
"""
import contextlib
import copy
import dataclasses
import itertools
import logging
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm
from ml_collections.config_dict import placeholder

from vlm_jax import checkpoints as checkpoints_lib
from vlm_jax import configs, errors, flops, models, sharding
from vlm_jax.data import load_tokenizer, make_eval_examples
from vlm_jax.data import config as data_config_lib
from vlm_jax.data import processor as processor_lib
from vlm_jax.data.templates import get_template
from vlm_jax.evaluate import answer_loss, results, shares, writers
from vlm_jax.evaluate.registry import BENCHMARKS
from vlm_jax.generate import Generator, sharded
from vlm_jax.train import apply_overrides, pretrained

log = logging.getLogger(__name__)

# Server-scored benchmarks: the writer, the reader argument naming its question file, the suffix.
SUBMISSIONS = {"vqav2": (writers.write_vqav2_submission, "questions_file", ".json"),
               "vizwiz": (writers.write_vizwiz_submission, "questions_file", ".json"),
               "mmbench": (writers.write_mmbench_submission, "tsv_file", ".xlsx")}
DTYPES = ("float32", "bfloat16")
SHUFFLE_SEED = 0  # of the images' order under shuffle_images


def default_config():
  """An eval config's keys besides `benchmarks` and `benchmark_args`, at their defaults."""
  return ml_collections.ConfigDict(dict(
      data=data_config_lib.default_config(),
      dtype="float32",  # params and compute: float32 | bfloat16, whatever a checkpoint trained in
      answer_loss=False,  # rows add answer_ce, answer_ce_tokens (vlm_jax.evaluate.answer_loss)
      shuffle_images=False,  # each question about another's image (rows: images="shuffled")
      # Over every device (-1: the devices left), or the first num_devices (one process only).
      mesh=dict(data=1, fsdp=-1, tensor=1, num_devices=placeholder(int))))


@dataclasses.dataclass(frozen=True)
class Generated:
  """A benchmark's generation pass, over every process."""
  answers: dict  # question_id -> answer text
  text_tokens: float  # mean text tokens per prompt, the image placeholder not counted
  skipped: dict  # skip reason -> questions
  generated_tokens: int  # over the answers, each one's stop token counted
  seconds: float  # wall clock of the pass on the slowest process, compilation included


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


def shuffled_images(examples, seed=SHUFFLE_SEED):
  """`examples` with each question asked about another question's image.

  The distinct images, in a fixed-seed random order, form one cycle: every image's
  questions are asked about the next image. So no question keeps its own image where
  there are two or more; text-only questions (image None) stay so.
  """
  images = list(dict.fromkeys(e["image"] for e in examples if e["image"] is not None))
  order = np.random.default_rng(seed).permutation(len(images))
  successor = {images[a]: images[b] for a, b in zip(order, np.roll(order, -1))}
  return [{**e, "image": successor.get(e["image"], e["image"])} for e in examples]


def _records(data, benchmark, shuffle_images=False):
  """A benchmark's examples as one-question records for the data pipeline; with
  `shuffle_images`, each about another question's image (`shuffled_images`)."""
  examples = shuffled_images(data.examples) if shuffle_images else data.examples
  return [{"id": e["question_id"], "image": e["image"], "source": benchmark,
           "conversations": [{"from": "human", "value": "<image>\n" + e["prompt"]}]}
          for e in examples]


def load_model(spec, mesh, dtype="float32"):
  """(model config at compute dtype `dtype`, params) of `spec`: a converted or exported
  model folder, or a training workdir at its latest checkpoint or at `DIR@STEP`.

  The params are restored straight onto their shardings on `mesh` (each device reads its
  own shards: no device ever holds them whole), then cast to `dtype` where they lie.
  """
  path, step = pretrained.parse_spec(spec)
  if pretrained.is_training_run(path):
    model_config = pretrained.read_run_config(path).model
    model_config, params = pretrained.load_run(path, step,
                                               sharded.param_shardings(model_config, mesh))
  else:
    model_config, params = checkpoints_lib.load(
        path, sharded.param_shardings(checkpoints_lib.load_config(path), mesh))
  model_config.dtype = dtype
  return model_config, _as_dtype(params, dtype)


def _as_dtype(params, dtype):
  """The float params as `dtype`, each device casting its own shards."""
  is_float = lambda x: jnp.issubdtype(x.dtype, jnp.floating)
  if all(x.dtype == dtype for x in jax.tree.leaves(params) if is_float(x)):
    return params
  cast = lambda x: x.astype(dtype) if is_float(x) else x
  return jax.jit(lambda tree: jax.tree.map(cast, tree),
                 out_shardings=jax.tree.map(lambda x: x.sharding, params))(params)


def _mesh(mesh_config, batch_size):
  """The eval mesh; raises unless `batch_size` rows split over its batch shards and over
  the processes."""
  with errors.user_input(ValueError):
    mesh = sharding.mesh_of(mesh_config)
  sharding.check_batch_splits(batch_size, 1, mesh)
  shares.check_rows_split(mesh)
  return mesh


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
              image_token_id=model_config.image_token_id, padding_side="left",
              batch_size=config.data.batch_size // jax.process_count())  # rows per process
  return data_config_lib.resolve(data)


def _stop_ids(tokenizer, template, model_config):
  """End-of-sequence ids: the tokenizer's eos, the checkpoint's, and the template's end of
  turn if one token."""
  end = tokenizer.encode(template.end_of_turn) if template.end_of_turn else []
  eos = model_config.get("processor", {}).get("eos_token_ids") or []
  return sorted({tokenizer.eos_id, *eos, *(end if len(end) == 1 else [])} - {None})


def _longest_first(records, tokenizer):
  """`records` by prompt tokens, longest first (ties in benchmark order): batches of like
  lengths pad little, and the largest shapes compile (or run out of memory) first."""
  length = {id(r): len(tokenizer.encode(r["conversations"][0]["value"])) for r in records}
  return sorted(records, key=lambda r: -length[id(r)])


def _idle_batch(data_config, pad_id):
  """A batch of no valid rows, the image placeholder alone in each: what a process whose
  share is done feeds to the steps the others still run."""
  rows, size = data_config.batch_size, data_config.image_size
  return {"input_ids": np.full((rows, 1), data_config.image_token_id, np.int32),
          "attention_mask": np.ones((rows, 1), np.int32),
          "pixels": np.zeros((rows, size, size, 3), np.float32),
          "question_ids": np.full((rows, 1), pad_id, np.int32),
          "question_mask": np.ones((rows, 1), np.int32),
          "question_id": [None] * rows, "valid": np.zeros(rows, bool)}


def _share(records):
  """This process's share of `records`: p, p + P, ... (as the eval pipeline shards them)."""
  return records[jax.process_index()::jax.process_count()]


@contextlib.contextmanager
def _share_batches(records, data_config, pad_id):
  """-> (this process's eval batches of its `_share` of `records`, then idle batches while
  another process still has one; the pipeline's counters, complete once they are done)."""
  iterator = None
  if _share(records):
    iterator = iter(make_eval_examples(data_config, shard_index=jax.process_index(),
                                       shard_count=jax.process_count(), records=records))
  try:
    yield (shares.in_step(iterator or (), _idle_batch(data_config, pad_id)),
           iterator.counters if iterator else {})
  finally:
    if iterator is not None:
      iterator.close()


def generate_answers(generator, params, records, data_config, tokenizer, desc):
  """Answers to `records`, each process answering its `_share` -> Generated, the same on
  every process."""
  stop = set(generator.settings.eos_ids)
  answers, text_tokens, generated = [], [], 0
  start = time.perf_counter()
  with (_share_batches(records, data_config, tokenizer.pad_id) as (batches, counters),
        tqdm.tqdm(total=len(_share(records)), desc=desc, unit="q") as bar):
    for batch in batches:
      tokens = generator(params, batch["input_ids"], batch["attention_mask"],
                         pixels=batch["pixels"], question_ids=batch["question_ids"],
                         question_mask=batch["question_mask"], active=batch["valid"])
      for row in np.flatnonzero(batch["valid"]):
        ids, emitted = _answer_ids(tokens[row].tolist(), stop)
        generated += emitted
        answers.append([batch["question_id"][row],
                        tokenizer.decode(ids, skip_special_tokens=True).strip()])
        text_tokens.append(int(batch["attention_mask"][row].sum()) - 1)  # less the placeholder
      bar.update(int(np.sum(batch["valid"])))
      bar.set_postfix_str(f"{generated / bar.format_dict['elapsed']:.0f} tokens/s")
  skipped = {k: int(v) for k, v in counters.items() if k != "truncated" and v}
  return _merged(shares.gather(dict(answers=answers, text_tokens=text_tokens,
                                    generated=generated, skipped=skipped,
                                    seconds=time.perf_counter() - start)))


def _answer_ids(ids, stop):
  """(the ids before the first stop id: the answer; how many were generated, the stop id
  counted)."""
  end = next((i for i, t in enumerate(ids) if t in stop), None)
  return ids[:end], len(ids) if end is None else end + 1


def _merged(parts):
  """The processes' parts of a generation pass -> Generated."""
  text_tokens = [n for part in parts for n in part["text_tokens"]]
  skipped = {}
  for part in parts:
    for reason, n in part["skipped"].items():
      skipped[reason] = skipped.get(reason, 0) + n
  return Generated(
      answers=dict(itertools.chain.from_iterable(part["answers"] for part in parts)),
      text_tokens=float(np.mean(text_tokens)) if text_tokens else 0.0, skipped=skipped,
      generated_tokens=sum(part["generated"] for part in parts),
      seconds=max(part["seconds"] for part in parts))


def _row(checkpoint, name, config, metrics, generated, data, answers_file, images="own"):
  budget = config.compressor.budget
  cost = flops.inference_flops(config, text_tokens=generated.text_tokens, visual_tokens=budget)
  skipped = generated.skipped
  return {
      "checkpoint": checkpoint, "benchmark": name, "images": images,
      "llm_params_b": cost["llm_params"] / 1e9, "visual_tokens": budget,
      "text_tokens": generated.text_tokens, "inference_gflops": cost["total"] / 1e9,
      "paper_gflops": cost["paper"] / 1e9, "accuracy": metrics["accuracy"],
      # A test split's placeholder metrics (no annotations) lack accuracy_all.
      "accuracy_all": metrics.get("accuracy_all", float("nan")),
      "n_scored": metrics["n_scored"], "n_unanswered": metrics["n_unanswered"],
      "n_unparsed": metrics["n_unparsed"], "n_skipped": sum(skipped.values()),
      "skipped": skipped, "missing_images": data.missing_images,
      "unknown_ids": metrics.get("unknown_ids", []), "answers_file": answers_file,
      "metrics": {k: v for k, v in metrics.items() if k not in ("unknown_ids",)},
      "dtype": config.dtype, "questions_per_s": len(generated.answers) / generated.seconds,
      "generated_tokens_per_s": generated.generated_tokens / generated.seconds,
  }


def _score(benchmark, answers, data):
  if data.annotations is None:  # a test split: only the submission file scores it
    return {"accuracy": float("nan"), "n_scored": 0, "n_unanswered": 0, "n_unparsed": 0}
  return benchmark.score(answers, data)


def _write_answers(stem, checkpoint, name, benchmark, args, data, answers):
  """stem.jsonl, the answers in benchmark order, and a server-scored benchmark's submission."""
  writers.write_answers_jsonl(
      stem + ".jsonl", [{"question_id": e["question_id"], "prompt": e["prompt"],
                         "text": answers[e["question_id"]]}
                        for e in data.examples if e["question_id"] in answers],
      model_id=checkpoint)
  if name in SUBMISSIONS:
    _write_submission(name, benchmark, args, answers, stem)


def _write_submission(name, benchmark, args, answers, path):
  writer, source, suffix = SUBMISSIONS[name]
  source_file = args.get(source) or os.path.join(args["root"], benchmark.layout[source])
  coverage = writer(path + suffix, source_file, answers)
  log.info("%s submission: %s (%s)", name, path + suffix, coverage)


def run(config, checkpoints, workdir, budgets=None, overrides=()):
  """Evaluates every checkpoint at every budget (default: its own) on config.benchmarks.

  config: `benchmarks` (names), `benchmark_args` ({name: reader arguments, e.g. root}),
  `data` (batch_size, global, and bucket_lengths of the eval pipeline; tokenizer, template
  and image preprocessing unset to take each checkpoint's own), `dtype`, `mesh`,
  `answer_loss` and `shuffle_images` (see default_config). checkpoints: load_model specs.
  overrides: `KEY=VALUE` items set on config; the data keys among them win over the
  checkpoints' processors. On several processes every one calls this alike: each answers
  its share, process 0 alone writes, and all return the same rows.
  """
  config = _with_defaults(config, overrides)
  mesh = _mesh(config.mesh, config.data.batch_size)
  explicit = processor_lib.explicit_data_keys(overrides)
  writes = jax.process_index() == 0
  rows = shares.from_process_0(results.load(workdir) if writes else None)  # what it wrote
  written = {results.row_key(r): r for r in rows}
  images = "shuffled" if config.shuffle_images else "own"
  benchmarks = {}
  for name in config.benchmarks:
    benchmark, args = BENCHMARKS.get(name), dict(config.benchmark_args.get(name, {}))
    data = benchmark.read(**args)
    if data.missing_images:
      log.warning("%s: %d images missing, their questions count as unanswered: %s", name,
                  len(data.missing_images), ", ".join(map(str, data.missing_images[:10])))
    references = (answer_loss.reference_answers(data.annotations, name)
                  if config.answer_loss else None)
    benchmarks[name] = (benchmark, args, data, _records(data, name, config.shuffle_images),
                        references)
  for checkpoint in map(str, checkpoints):
    model_config, params = load_model(checkpoint, mesh, config.dtype)
    data_config = _data_config(config, model_config, checkpoint, explicit)
    tokenizer = load_tokenizer(data_config.tokenizer)
    processor_lib.check_vocabulary(tokenizer, model_config.llm.vocab_size, checkpoint)
    stop_ids = _stop_ids(tokenizer, get_template(data_config.template, tokenizer,
                                                 data_config.image_token), model_config)
    for budget in budgets or [model_config.compressor.budget]:
      todo = _todo(written, checkpoint, budget, benchmarks, images, config.answer_loss)
      if not todo:
        continue
      config_v = with_budget(model_config, params, budget)
      loss_fn = answer_loss.summed_loss(config_v, mesh) if config.answer_loss else None
      for name, row in todo.items():
        benchmark, args, data, records, references = benchmarks[name]
        records = _longest_first(records, tokenizer)
        if row is None:
          generator = Generator(config_v, max_new_tokens=benchmark.max_new_tokens,
                                eos_id=stop_ids, pad_id=tokenizer.pad_id, mesh=mesh)
          generated = generate_answers(generator, params, records, data_config, tokenizer,
                                       desc=f"{_slug(checkpoint)} V={budget} {name} "
                                       f"({images} images)")
          stem = os.path.join(workdir, "answers", f"{_slug(checkpoint)}_v{budget}_{name}"
                              + ("_shuffled" if config.shuffle_images else ""))
          row = _row(checkpoint, name, config_v, _score(benchmark, generated.answers, data),
                     generated, data, stem + ".jsonl", images)
          rows.append(row)
          if writes:
            _write_answers(stem, checkpoint, name, benchmark, args, data, generated.answers)
          _print_row(row, generated.seconds)
        if loss_fn is not None and "answer_ce" not in row:
          row.update(_answer_loss(loss_fn, params, records, references, data_config,
                                  tokenizer, mesh))
          print(f"{name} V={budget} ({images} images): answer_ce {row['answer_ce']:.4f} nats "
                f"per token over {row['answer_ce_tokens']} answer tokens")
        if writes:
          results.write(workdir, rows)
  return rows


def _todo(written, checkpoint, budget, benchmarks, images, with_answer_loss):
  """{benchmark: its row in results.json, or None} of those with work left at `budget`:
  a row yet to write, or one lacking the answer_ce that `with_answer_loss` asks for."""
  todo = {}
  for name in benchmarks:
    row = written.get(results.row_key({"checkpoint": checkpoint, "visual_tokens": budget,
                                       "benchmark": name, "images": images}))
    if row is None or (with_answer_loss and "answer_ce" not in row):
      todo[name] = row
  return todo


def _print_row(row, seconds):
  print(f"{row['benchmark']} V={row['visual_tokens']} ({row['images']} images): accuracy "
        f"{row['accuracy']:.4f} over {row['n_scored']} scored; {row['n_unanswered']} "
        f"unanswered, {row['n_unparsed']} unparsed, {row['n_skipped']} skipped ({seconds:.0f}s: "
        f"{row['questions_per_s']:.1f} questions/s, "
        f"{row['generated_tokens_per_s']:.0f} generated tokens/s)")


def _answer_loss(loss_fn, params, records, references, data_config, tokenizer, mesh):
  """A row's answer_loss fields: `records` answered by `references` ({question_id: text};
  None for a split without annotations, where no token is scored)."""
  if references is None:
    return answer_loss.row_fields(0.0, 0)
  answers = answer_loss.answer_ids(_share(records), references,
                                   answer_loss.labels_builder(data_config, tokenizer))
  with _share_batches(records, data_config, tokenizer.pad_id) as (batches, _):
    return answer_loss.measure(loss_fn, params, batches, answers, tokenizer.pad_id,
                               data_config.bucket_lengths, mesh)


def _with_defaults(config, overrides):
  """`config` over default_config(), with `overrides` set; a bad dtype is an error."""
  full = default_config()
  full.update(copy.deepcopy(config))
  with errors.user_input():
    apply_overrides(full, overrides)
  configs.one_of("inference dtype", full.dtype, DTYPES)
  return full


def _slug(path):
  return os.path.basename(path.rstrip("/")).replace(os.sep, "_")
