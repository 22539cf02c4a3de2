"""What every scorer shares: pairing predictions with annotations, the result shape.

A scorer is `score(predictions, annotations, **options) -> dict`:
  predictions: {question_id: model output text}; a missing id or None means
    the question was not answered.
  annotations: {question_id: what the benchmark's scorer needs}.
The result holds at least
  accuracy: over the answered questions (0..1, or the scale its key names),
  accuracy_all: the same score over every annotated question, an unanswered one
    counting as wrong (annotations cover the questions whose image is missing
    or whose record the data pipeline skipped, so those count too). Where
    accuracy is a mean of per-question scores (VQA soft score, GQA, exact
    match, ScienceQA, SEED, POPE's accuracy, MME's questions right) that mean
    is taken over all questions; MMBench's counts every circular group, one
    with an unanswered row being wrong. Sub-metrics (POPE's F1, MME's
    acc+ and scores, ...) stay over the answered questions,
  n_scored: answered questions scored,
  n_unanswered: annotated questions without a prediction,
  n_unparsed: answers no parse rule could read (scored as wrong),
  unknown_ids / n_unknown: predicted ids absent from the annotations (not scored),
plus the benchmark's own sub-metrics. A ratio with an empty denominator is NaN.
"""
import math


def split_predictions(predictions, annotations):
  """Pairs predictions with annotations.

  Returns (answered, n_unanswered, unknown_ids): answered is a list of
  (question_id, prediction text, annotation) in annotation order.
  """
  answered = []
  n_unanswered = 0
  for question_id, annotation in annotations.items():
    text = predictions.get(question_id)
    if text is None:
      n_unanswered += 1
      continue
    if not isinstance(text, str):
      raise TypeError(
          f"prediction for question {question_id!r} is {type(text).__name__}, not str")
    answered.append((question_id, text, annotation))
  unknown_ids = [question_id for question_id in predictions if question_id not in annotations]
  return answered, n_unanswered, unknown_ids


def ratio(numerator, denominator):
  """numerator / denominator, NaN when the denominator is 0."""
  return numerator / denominator if denominator else math.nan


def mean_over_all(accuracy, n_scored, n_all):
  """A mean of per-question scores over n_scored answered questions, taken over
  n_all questions instead, the unanswered ones scoring 0."""
  return ratio(accuracy * n_scored if n_scored else 0.0, n_all)


def make_result(accuracy, n_scored, n_unanswered, unknown_ids, n_unparsed=0,
                accuracy_all=None, **metrics):
  """The common result dict, followed by the scorer's own metrics.

  accuracy_all defaults to mean_over_all(accuracy, ...), right for every scorer
  whose accuracy is a mean of per-question scores; one whose accuracy is not
  (MMBench's circular groups) passes its own.
  """
  if accuracy_all is None:
    accuracy_all = mean_over_all(accuracy, n_scored, n_scored + n_unanswered)
  return {
      "accuracy": accuracy,
      "accuracy_all": accuracy_all,
      "n_scored": n_scored,
      "n_unanswered": n_unanswered,
      "n_unparsed": n_unparsed,
      "unknown_ids": list(unknown_ids),
      "n_unknown": len(unknown_ids),
      **metrics,
  }


def check_variant(variant):
  if variant not in ("llava", "lmms_eval"):
    raise ValueError(f"unknown scoring variant {variant!r}; use 'llava' or 'lmms_eval'")
