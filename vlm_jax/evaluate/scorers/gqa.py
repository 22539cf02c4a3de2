"""GQA: exact match of the answer.

LLaVA (the official testdev-balanced script after LLaVA's conversion): the
prediction loses trailing periods and is lowercased. lmms-eval: both sides are
stripped, lowercased and lose every ASCII punctuation mark.
"""
import string

from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common

_NO_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _lmms_eval_form(text):
  return text.strip().lower().translate(_NO_PUNCTUATION)


@SCORERS.register("gqa")
def score_gqa(predictions, annotations, variant="llava"):
  """annotations: {question_id: answer}."""
  common.check_variant(variant)
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  if variant == "llava":
    correct = sum(text.rstrip(".").lower() == answer for _, text, answer in answered)
  else:
    correct = sum(_lmms_eval_form(text) == _lmms_eval_form(answer)
                  for _, text, answer in answered)
  return common.make_result(common.ratio(correct, len(answered)), len(answered),
                            n_unanswered, unknown_ids)
