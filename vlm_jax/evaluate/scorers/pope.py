"""POPE: yes/no object hallucination, per split (adversarial, popular, random).

LLaVA parsing: keep the text before the first `.`, delete `,`, split on
spaces; the answer is no if `No`, `no` or `not` is a word, otherwise yes (so
`NO` counts as yes and nothing is unparsed). Per split: accuracy, precision,
recall, F1 with yes as the positive class, and the yes-ratio of predictions.
lmms-eval: the answer must be exactly `yes` or `no` after lowercase/strip
(anything else is unparsed: wrong, and neither a yes nor a no in the
precision/recall counts), and its yes-ratio counts the ground truth.
"""
from vlm_jax.evaluate.registry import SCORERS
from vlm_jax.evaluate.scorers import common

_NO_WORDS = frozenset({"No", "no", "not"})


def parse_yes_no(text, variant="llava"):
  """'yes', 'no', or None (lmms-eval only) for an answer no rule reads."""
  if variant == "lmms_eval":
    text = text.strip().lower()
    return text if text in ("yes", "no") else None
  first_sentence = text.split(".")[0].replace(",", "")
  return "no" if _NO_WORDS & set(first_sentence.split(" ")) else "yes"


def binary_metrics(pairs, variant="llava"):
  """Metrics of (parsed prediction or None, label) pairs; yes is the positive class."""
  tp = sum(p == "yes" and y == "yes" for p, y in pairs)
  fp = sum(p == "yes" and y == "no" for p, y in pairs)
  tn = sum(p == "no" and y == "no" for p, y in pairs)
  fn = sum(p == "no" and y == "yes" for p, y in pairs)
  precision = common.ratio(tp, tp + fp)
  recall = common.ratio(tp, tp + fn)
  counted = [y for _, y in pairs] if variant == "lmms_eval" else [p for p, _ in pairs]
  return {
      "accuracy": common.ratio(tp + tn, len(pairs)),
      "precision": precision,
      "recall": recall,
      # = 2PR / (P + R), but 0 (not NaN) when there are errors and no true positive.
      "f1": common.ratio(2 * tp, 2 * tp + fp + fn),
      "yes_ratio": common.ratio(counted.count("yes"), len(pairs)),
      "tp": tp, "fp": fp, "tn": tn, "fn": fn,
      "n_scored": len(pairs),
  }


@SCORERS.register("pope")
def score_pope(predictions, annotations, variant="llava"):
  """annotations: {question_id: {"label": "yes" | "no", "split": name}}.

  Returns the common fields over all splits, `splits` {name: metrics}, and
  `f1_mean` (the mean F1 over splits: the POPE number LLaVA-1.5 reports) and
  `accuracy_mean`.
  """
  common.check_variant(variant)
  answered, n_unanswered, unknown_ids = common.split_predictions(predictions, annotations)
  by_split = {}
  for question_id, text, annotation in answered:
    label = annotation["label"]
    if label not in ("yes", "no"):
      raise ValueError(f"POPE label of question {question_id!r} is {label!r}, not yes/no")
    by_split.setdefault(annotation["split"], []).append((parse_yes_no(text, variant), label))
  splits = {name: binary_metrics(pairs, variant) for name, pairs in sorted(by_split.items())}
  all_pairs = [pair for pairs in by_split.values() for pair in pairs]
  n_unparsed = sum(parsed is None for parsed, _ in all_pairs)
  overall = binary_metrics(all_pairs, variant)
  return common.make_result(
      overall["accuracy"], len(all_pairs), n_unanswered, unknown_ids, n_unparsed,
      precision=overall["precision"], recall=overall["recall"], f1=overall["f1"],
      yes_ratio=overall["yes_ratio"],
      f1_mean=common.ratio(sum(s["f1"] for s in splits.values()), len(splits)),
      accuracy_mean=common.ratio(sum(s["accuracy"] for s in splits.values()), len(splits)),
      splits=splits)
