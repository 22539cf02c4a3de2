"""SEED-Bench: the predicted option letter, per question type.

LLaVA: the whole text must equal the answer letter. lmms-eval: its first
character, case-insensitive. Accuracy per question type, over image questions,
video questions and all.
"""
import collections

from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common

OPTIONS = "ABCD"


def parse_letter(text, variant="llava"):
  """The option letter, or None."""
  if variant == "lmms_eval":
    text = text.strip()[:1].upper()
  return text if len(text) == 1 and text in OPTIONS else None


@SCORERS.register("seed")
def score_seed(predictions, annotations, variant="llava"):
  """annotations: {question_id: {"answer": letter, "data_type": "image" | "video",
  "question_type": name}}.

  Returns the common fields, `image_accuracy`, `video_accuracy`,
  `question_types` {name: accuracy}, and `accuracy_missing_as_wrong`
  (LLaVA's count: an unanswered question is wrong).
  """
  common.check_variant(variant)
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  by_type = collections.defaultdict(list)
  by_data_type = collections.defaultdict(list)
  n_unparsed = 0
  for _, text, annotation in answered:
    letter = parse_letter(text, variant)
    n_unparsed += letter is None
    right = letter == annotation["answer"]
    by_type[annotation["question_type"]].append(right)
    by_data_type[annotation["data_type"]].append(right)
  n_correct = sum(sum(rights) for rights in by_type.values())

  def mean(rights):
    return common.ratio(sum(rights), len(rights))

  return common.make_result(
      common.ratio(n_correct, len(answered)), len(answered),
      n_unanswered, unknown_ids, n_unparsed,
      image_accuracy=mean(by_data_type["image"]),
      video_accuracy=mean(by_data_type["video"]),
      question_types={name: mean(rights) for name, rights in sorted(by_type.items())},
      accuracy_missing_as_wrong=common.ratio(n_correct, len(annotations)))
