"""VQA soft accuracy (VQAv2, VizWiz, TextVQA).

With k of the n human answers equal to the (normalized) prediction, the score
is the mean over the n leave-one-out subsets of min(1, matches / 3); for n = 10
that is 0, 0.3, 0.6, 0.9, 1.0 for k = 0, 1, 2, 3, >= 4.

The variants differ in what is normalized (steps 1-4 of `vqa_normalize`):
  llava: the official VQA evaluation; steps 1-4 on the prediction and on every
    human answer.
  lmms_eval: lmms-eval's VQAv2 task (`vqav2_process_results`); the prediction
    gets steps 1-4, the human answers step 2 only. Unless the answers are then
    all equal, both sides get steps 3-4 on top. Unanimous answers are thus
    compared nearly raw: ten "Red" or ten "the" never match any prediction,
    which is lowercased and loses its articles.
lmms-eval's TextVQA and VizWiz tasks normalize both sides with steps 1-4 and
have no unanimity rule: that is the llava variant.
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


def _punctuation_and_words(text):
  """Steps 3-4, which lmms-eval's VQAv2 adds to both sides when the answers disagree."""
  return vqa_normalize.normalize_words(vqa_normalize.normalize_punctuation(text))


def _compared_lmms_eval(text, answers):
  """(prediction, human answers) normalized as lmms-eval's VQAv2 task compares them."""
  prediction = vqa_normalize.normalize_answer(text)
  answers = [vqa_normalize.normalize_whitespace(answer) for answer in answers]
  if len(set(answers)) > 1:
    answers = [_punctuation_and_words(answer) for answer in answers]
    # A second pass over the normalized prediction; it only changes a text that
    # kept periods past the 32 the first pass may remove.
    prediction = _punctuation_and_words(prediction)
  return prediction, answers


def _compared_llava(text, answers):
  """(prediction, human answers) normalized as the official VQA evaluation compares them."""
  return (vqa_normalize.normalize_answer(text),
          [vqa_normalize.normalize_answer(answer) for answer in answers])


@SCORERS.register("vqa")
def score_vqa(predictions, annotations, variant="llava"):
  """annotations: {question_id: list of human answers (10 in VQAv2, VizWiz, TextVQA)}."""
  common.check_variant(variant)
  normalize = _compared_llava if variant == "llava" else _compared_lmms_eval
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  total = sum(soft_score(*normalize(text, answers)) for _, text, answers in answered)
  return common.make_result(common.ratio(total, len(answered)), len(answered),
                            n_unanswered, unknown_ids)
