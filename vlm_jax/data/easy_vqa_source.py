"""easy-vqa (PyPI `easy-vqa`) as one-round LLaVA records with their answers."""
import os

import easy_vqa

from vlm_jax.data.records import qa_record

SPLITS = ("train", "test")


def easy_vqa_records(split):
  """All questions of the split: 38,575 train or 9,673 test records."""
  readers = {
      "train": (easy_vqa.get_train_questions, easy_vqa.get_train_image_paths),
      "test": (easy_vqa.get_test_questions, easy_vqa.get_test_image_paths),
  }
  if split not in readers:
    raise ValueError(f"unknown easy_vqa split {split!r}; known: {', '.join(SPLITS)}")
  read_questions, read_image_paths = readers[split]
  questions, answers, image_ids = read_questions()
  image_paths = read_image_paths()
  # An image id without a file keeps a path that does not exist, so the
  # pipeline reports it as a missing image instead of dropping the question.
  image_folder = os.path.dirname(next(iter(image_paths.values())))
  return [
      qa_record(f"easy_vqa-{split}-{index}",
                image_paths.get(image_id, os.path.join(image_folder, f"{image_id}.png")),
                question, answer, f"easy_vqa:{split}")
      for index, (question, answer, image_id) in enumerate(zip(questions, answers, image_ids))
  ]
