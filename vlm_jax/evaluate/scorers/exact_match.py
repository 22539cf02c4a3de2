"""Normalized exact match of a short answer (easy-vqa and the procedural tasks).

Case, surrounding and repeated whitespace, and trailing periods do not matter.
"""
from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common


def normalize_short_answer(text):
  """'  The  Circle. ' -> 'the circle'."""
  return " ".join(text.lower().split()).rstrip(".").rstrip()


@SCORERS.register("exact_match")
def score_exact_match(predictions, annotations):
  """annotations: {question_id: answer, or a list of accepted answers}."""
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  correct = 0
  for _, text, answers in answered:
    accepted = [answers] if isinstance(answers, str) else answers
    correct += normalize_short_answer(text) in {normalize_short_answer(a) for a in accepted}
  return common.make_result(common.ratio(correct, len(answered)), len(answered),
                            n_unanswered, unknown_ids)
