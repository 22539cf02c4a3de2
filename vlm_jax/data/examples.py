"""One record -> one model-facing example (numpy), or a Skip saying why not.

Example (T text positions, the image as ONE placeholder id, LLaVA's
IMAGE_TOKEN_INDEX convention; the model expands it to V visual tokens):
  input_ids       int32 (T,)   prompt tokens, `image_token_id` where <image> is
  labels          int32 (T,)   input_ids on answer tokens (+ end of turn), else -100
  attention_mask  int32 (T,)   ones (padding sets zeros when batching)
  pixels          float32 (H, W, 3)
  question_ids    int32 (Tq,)  the first user question alone, no template
  question_mask   int32 (Tq,)
  truncated       bool         whether max_length cut the sequence (popped by the pipeline)
Generation examples hold the prompt up to the assistant's turn (never cut)
instead of labels, plus `question_id` and `answer` strings.
"""
import dataclasses

import numpy as np

from vlm_jax.data import images
from vlm_jax.data import records as records_lib

IGNORE_INDEX = -100
COUNTERS = ("skipped_missing_image", "skipped_bad_image", "skipped_no_image_token",
            "skipped_no_answer", "truncated")


@dataclasses.dataclass(frozen=True)
class Skip:
  """A record left out: `reason` is one of the skipped_* COUNTERS."""
  reason: str
  record_id: str
  source: str
  detail: str

  def message(self):
    return f"skipping record {self.record_id!r} from {self.source}: {self.detail}"


class ExampleBuilder:
  """Callable record -> example dict or Skip (a grain map transform)."""

  def __init__(self, *, tokenizer, template, image_kind, image_size, aspect, max_length,
               image_token_id=-200, for_generation=False):
    self.tokenizer = tokenizer
    self.template = template
    self.image_kind, self.image_size, self.aspect = image_kind, image_size, aspect
    self.max_length = max_length
    self.image_token_id = image_token_id
    self.for_generation = for_generation

  def __call__(self, record):
    def skip(reason, detail):
      return Skip(reason, record["id"], record["source"], detail)

    conversations = record["conversations"]
    if record.get("image") is None:
      return skip("skipped_missing_image", "the record names no image")
    if not records_lib.has_image_token(conversations):
      return skip("skipped_no_image_token", f"no {records_lib.IMAGE_TOKEN} in the user's turns")
    rounds = records_lib.conversation_rounds(conversations)
    if self.for_generation:
      answer = records_lib.reference_answer(record)
      ids, labels = self.encode(self.template.generation_prompt(rounds[0][0]))
      truncated = False
    else:
      if not any(answer and answer.strip() for _, answer in rounds):
        return skip("skipped_no_answer", "no assistant answer")
      ids, labels = self.encode(self.template.conversation(rounds))
      truncated = len(ids) > self.max_length
      ids, labels = ids[:self.max_length], labels[:self.max_length]
      if all(label == IGNORE_INDEX for label in labels):
        return skip("skipped_no_answer", f"every answer token lies past max_length={self.max_length}")
    if ids.count(self.image_token_id) != 1:
      return skip("skipped_no_image_token",
                  f"the prompt holds no {records_lib.IMAGE_TOKEN}: past max_length={self.max_length} "
                  "or, for generation, not in the first question")
    image_name = record["image"] if isinstance(record["image"], str) else "in-memory image"
    try:
      image = images.load_image(record["image"])
    except FileNotFoundError:
      return skip("skipped_missing_image", f"image file not found: {image_name}")
    except images.BadImageError as e:
      return skip("skipped_bad_image", str(e))
    question_ids = self.tokenizer.encode(records_lib.first_question(conversations))[:self.max_length]
    # A question that is only <image> still gives the query pass one token.
    question_ids = question_ids or [self.tokenizer.eos_id]
    example = {
        "input_ids": np.asarray(ids, np.int32),
        "attention_mask": np.ones(len(ids), np.int32),
        "pixels": images.preprocess_image(image, kind=self.image_kind, image_size=self.image_size,
                                          aspect=self.aspect),
        "question_ids": np.asarray(question_ids, np.int32),
        "question_mask": np.ones(len(question_ids), np.int32),
        "truncated": truncated,
    }
    if self.for_generation:
      example["question_id"] = record["id"]
      example["answer"] = answer
    else:
      example["labels"] = np.asarray(labels, np.int32)
    return example

  def encode(self, segments):
    """Template segments -> (ids, labels); <image> outside answers becomes the placeholder id."""
    ids = list(self.tokenizer.prefix_ids)
    labels = [IGNORE_INDEX] * len(ids)
    for text, is_answer in segments:
      if is_answer:
        answer_ids = self.tokenizer.encode(text)
        ids += answer_ids
        labels += answer_ids
        continue
      for position, piece in enumerate(text.split(records_lib.IMAGE_TOKEN)):
        if position > 0:
          ids.append(self.image_token_id)
          labels.append(IGNORE_INDEX)
        piece_ids = self.tokenizer.encode(piece) if piece else []
        ids += piece_ids
        labels += [IGNORE_INDEX] * len(piece_ids)
    return ids, labels
