"""VQA soft accuracy (VQAv2, VizWiz, TextVQA).

With k of the n human answers equal to the (normalized) prediction, the score
is the mean over the n leave-one-out subsets of min(1, matches / 3); for n = 10
that is 0, 0.3, 0.6, 0.9, 1.0 for k = 0, 1, 2, 3, >= 4.
"""
from vlm_jax.evaluate import vqa_normalize
from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common


def soft_score(prediction, human_answers):
  """Leave-one-out VQA accuracy of one normalized prediction against normalized answers."""
  if not human_answers:
    raise ValueError("a VQA question needs at least one human answer")
  k = sum(answer == prediction for answer in human_answers)
  # Leaving out a matching human leaves k - 1 matches, leaving out another leaves k.
  scores = [min(1.0, (k - (answer == prediction)) / 3) for answer in human_answers]
  return sum(scores) / len(scores)


def _human_answers_lmms_eval(answers):
  """lmms-eval's VQAv2: answers skip step 1, and unanimous answers are only stripped."""
  answers = [vqa_normalize.normalize_whitespace(answer) for answer in answers]
  if len(set(answers)) > 1:
    answers = [vqa_normalize.normalize_answer(answer, split_possessive=False)
               for answer in answers]
  return answers


@SCORERS.register("vqa")
def score_vqa(predictions, annotations, variant="llava"):
  """annotations: {question_id: list of human answers (10 in VQAv2, VizWiz, TextVQA)}."""
  common.check_variant(variant)
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  total = 0.0
  for _, text, answers in answered:
    if variant == "llava":
      humans = [vqa_normalize.normalize_answer(answer) for answer in answers]
    else:
      humans = _human_answers_lmms_eval(answers)
    total += soft_score(vqa_normalize.normalize_answer(text), humans)
  return common.make_result(common.ratio(total, len(answered)), len(answered),
                            n_unanswered, unknown_ids)
