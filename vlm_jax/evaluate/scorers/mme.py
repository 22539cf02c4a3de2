"""MME: yes/no questions, two per image, acc + acc+ per subtask.

Parse: lowercase, strip, delete `.`; exactly `yes`/`no`; else a single `y`/`n`;
else `yes`, then `no`, inside the first 4 characters; else other (wrong,
unparsed). Per subtask: acc = 100 * questions right / questions, acc+ = 100 *
images with every question right / images, score = acc + acc+. Perception is
the sum over its 10 subtasks, cognition over its 4.
"""
import collections

from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common

PERCEPTION = ("existence", "count", "position", "color", "posters", "celebrity",
              "scene", "landmark", "artwork", "OCR")
COGNITION = ("commonsense_reasoning", "numerical_calculation", "text_translation",
             "code_reasoning")


def parse_yes_no(text):
  """'yes', 'no' or 'other'."""
  text = text.lower().strip().replace(".", "")
  if text in ("yes", "no"):
    return text
  if len(text) == 1:
    return {"y": "yes", "n": "no"}.get(text, "other")
  if "yes" in text[:4]:
    return "yes"
  if "no" in text[:4]:
    return "no"
  return "other"


@SCORERS.register("mme")
def score_mme(predictions, annotations):
  """annotations: {question_id: {"category": subtask, "image_id": str, "answer": "Yes" | "No"}}.

  Returns the common fields (accuracy: the fraction of answered questions
  right), `subtasks` {name: {"acc", "acc_plus", "score"}} on MME's 0..100
  scales, `perception_score` (0..2000) and `cognition_score` (0..800) summed
  over the subtasks present, and `missing_subtasks`. An image is judged on its
  answered questions.
  """
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  images = collections.defaultdict(list)  # (category, image_id) -> [right, ...]
  n_unparsed = 0
  for question_id, text, annotation in answered:
    category = annotation["category"]
    if category not in PERCEPTION + COGNITION:
      raise ValueError(f"question {question_id!r} has unknown MME subtask {category!r}")
    parsed = parse_yes_no(text)
    n_unparsed += parsed == "other"
    images[category, annotation["image_id"]].append(parsed == annotation["answer"].lower())
  by_category = collections.defaultdict(list)
  for (category, _), rights in images.items():
    by_category[category].append(rights)
  subtasks = {}
  for category, per_image in by_category.items():
    questions = [right for rights in per_image for right in rights]
    acc = 100 * sum(questions) / len(questions)
    acc_plus = 100 * sum(all(rights) for rights in per_image) / len(per_image)
    subtasks[category] = {"acc": acc, "acc_plus": acc_plus, "score": acc + acc_plus}
  n_correct = sum(sum(rights) for rights in images.values())
  return common.make_result(
      common.ratio(n_correct, len(answered)), len(answered), n_unanswered, unknown_ids,
      n_unparsed,
      subtasks=subtasks,
      perception_score=sum(subtasks[c]["score"] for c in PERCEPTION if c in subtasks),
      cognition_score=sum(subtasks[c]["score"] for c in COGNITION if c in subtasks),
      missing_subtasks=[c for c in PERCEPTION + COGNITION if c not in subtasks])
