"""bfloat16 against float32 inference: answers equal question for question, and questions/s.

A tiny QueCC VLM trained here on a built-in task (configs/train/tiny.py, --steps steps;
or --checkpoint, a model folder or training workdir) is scored by `vlm-jax eval`'s harness
on the task's benchmark with params and compute in float32, then in bfloat16, on the same
questions and mesh. One untimed round first compiles every shape (kept in a persistent
compilation cache, so the timed rounds only load them); then --repeats rounds alternate
the dtypes, and each dtype's questions/s and generated tokens/s are the median over its
rounds. Beside them: accuracy, and the fraction of bfloat16's answers equal to float32's.

  python benchmarks/eval_dtype.py --out eval_dtype.json
  python benchmarks/eval_dtype.py --checkpoint runs/tiny --benchmark easy_vqa --questions 500
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

import common

DTYPES = ("float32", "bfloat16")


def parse_args(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--benchmark", default="easy_vqa",
                      help="a built-in benchmark: easy_vqa | counting | spatial | ocr")
  parser.add_argument("--questions", type=int, default=500, help="its first N questions")
  parser.add_argument("--checkpoint", help="the model to score (default: train one here)")
  parser.add_argument("--steps", type=int, default=400, help="training steps of the tiny VLM")
  parser.add_argument("--batch", type=int, default=32, help="questions per generation step")
  parser.add_argument("--repeats", type=int, default=5, help="timed rounds of each dtype")
  parser.add_argument("--workdir", help="model, answers and compilation cache (default: a "
                      "temporary folder)")
  parser.add_argument("--out", help="write the numbers here as JSON")
  return parser.parse_args(argv)


def train_model(benchmark, steps, workdir):
  """A training workdir: tiny_llm s, QueCC at 16 visual tokens, trained on `benchmark`."""
  from vlm_jax import configs, train
  run = os.path.join(workdir, "run")
  config = configs.load(os.path.join(configs.CONFIG_DIR, "train", f"tiny.py:size=s,"
                                     f"compressor=quecc,budget=16,task={benchmark},steps={steps}"))
  train.train(config, run)
  return run


def use_compilation_cache(folder):
  import jax
  jax.config.update("jax_compilation_cache_dir", folder)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)


def evaluate(checkpoint, args, dtype, workdir):
  """The results row of one pass and its answers {question_id: text}."""
  from vlm_jax import configs
  from vlm_jax.evaluate import harness
  config = configs.load(os.path.join(
      configs.CONFIG_DIR, "eval", f"builtin.py:benchmarks={args.benchmark},"
      f"num_examples={args.questions},batch_size={args.batch},dtype={dtype}"))
  [row] = harness.run(config, [checkpoint], workdir)
  with open(row["answers_file"]) as f:
    return row, {a["question_id"]: a["text"] for a in map(json.loads, f)}


def measure(checkpoint, args, workdir):
  """The timed rounds of both dtypes -> a row per dtype."""
  rounds = {dtype: [] for dtype in DTYPES}
  for i in range(args.repeats + 1):  # round 0 compiles
    for dtype in DTYPES:
      rounds[dtype].append(evaluate(checkpoint, args, dtype,
                                    os.path.join(workdir, "eval", f"{dtype}_{i}")))
  reference = rounds["float32"][-1][1]
  rows = []
  for dtype, (_, *timed) in rounds.items():
    row, answers = timed[-1]
    same = sum(answers.get(q) == text for q, text in reference.items())
    rows.append(dict(
        dtype=dtype, accuracy=row["accuracy"], n_scored=row["n_scored"],
        questions_per_s=statistics.median(r["questions_per_s"] for r, _ in timed),
        generated_tokens_per_s=statistics.median(r["generated_tokens_per_s"] for r, _ in timed),
        all_questions_per_s=[r["questions_per_s"] for r, _ in timed],
        equal_to_float32=same, answered=len(reference),
        fraction_equal_to_float32=same / len(reference)))
  return rows


def main(argv=None):
  args = parse_args(argv)
  with tempfile.TemporaryDirectory(prefix="eval_dtype_") as scratch:
    workdir = args.workdir or scratch
    use_compilation_cache(os.path.join(workdir, "jax_cache"))
    checkpoint = args.checkpoint or train_model(args.benchmark, args.steps, workdir)
    rows = measure(checkpoint, args, workdir)
  speed = {r["dtype"]: r["questions_per_s"] for r in rows}
  result = dict(
      benchmark="eval_dtype", task=args.benchmark, questions=args.questions,
      checkpoint=args.checkpoint or f"tiny.py:size=s,compressor=quecc,budget=16 trained "
      f"{args.steps} steps", batch=args.batch, repeats=args.repeats,
      device=common.jax_device(), load_average=common.load_average(),
      bfloat16_speedup=speed["bfloat16"] / speed["float32"], rows=rows)
  print(f"\n{args.benchmark}, {args.questions} questions, {result['checkpoint']}; batch "
        f"{args.batch}, median of {args.repeats} rounds after a compiling one, on "
        f"{result['device']}.\n")
  print(common.markdown_table(
      ["dtype", "accuracy", "questions/s", "generated tokens/s", "answers equal to float32"],
      [[r["dtype"], f"{r['accuracy']:.3f}", f"{r['questions_per_s']:.1f}",
        f"{r['generated_tokens_per_s']:.0f}",
        f"{r['fraction_equal_to_float32']:.3f} ({r['equal_to_float32']}/{r['answered']})"]
       for r in rows]))
  print(f"\nbfloat16 / float32 questions/s: {result['bfloat16_speedup']:.2f}")
  common.write_json(args.out, result)
  return 0


if __name__ == "__main__":
  sys.exit(main())
