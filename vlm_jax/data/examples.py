"""One record -> one model-facing example (numpy), or a Skip saying why not.

Example (T text positions, the image as ONE placeholder id, LLaVA's
IMAGE_TOKEN_INDEX convention; the model expands it to V visual tokens):
  input_ids       int32 (T,)   prompt tokens, `image_token_id` where <image> is
  labels          int32 (T,)   input_ids on answer tokens (+ end of turn), else -100
  attention_mask  int32 (T,)   ones (padding sets zeros when batching)
  pixels          float32 (H, W, 3)
  question_ids    int32 (Tq,)  the first user question alone, no template, with the
                               tokenizer's special tokens as `hf_tokenizer(question)`
  question_mask   int32 (Tq,)
  truncated       bool         whether max_length cut the sequence (popped by the pipeline)
Generation examples hold the prompt up to the assistant's turn (never cut)
instead of labels, plus `question_id` and `answer` strings.

A text-only training record (no image, no <image> in its turns, as the ~40k
ShareGPT conversations of LLaVA-1.5's mix) gives input_ids without the
placeholder and all-zero pixels, as LLaVA's LazySupervisedDataset gives it a
zero image of the crop size; the model puts that row's visual tokens after its
text, masked out, so the LLM sees the text alone (vlm_jax.models.vlm.splice).
Such rows are mixed into image batches rather than grouped by modality
(LLaVA's `group_by_modality_length`): every batch keeps one shape, so the step
compiles once per bucket, and a text row costs only the tower's pass on a
blank image.
"""
import dataclasses

import numpy as np

from vlm_jax.data import images
from vlm_jax.data import records as records_lib

IGNORE_INDEX = -100
COUNTERS = ("skipped_malformed", "skipped_missing_image", "skipped_bad_image",
            "skipped_no_image_token", "skipped_no_answer", "truncated")


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
  """Callable record -> example dict or Skip (a grain map transform).

  Skipped: a malformed record; a record naming an image whose turns hold no
  <image>; one whose turns hold <image> but that names no image (LLaVA would
  tokenize "<image>" as plain text and train on a prompt about an image that
  is not there), counted as a missing image; a text-only record under a
  template that puts <image> in every prompt (plain) or for generation, whose
  prompts each need their image.
  """

  def __init__(self, *, tokenizer, template, image_kind, image_size, aspect, max_length,
               image_token_id=-200, for_generation=False, image_mean=None, image_std=None):
    self.tokenizer = tokenizer
    self.template = template
    self.image_kind, self.image_size, self.aspect = image_kind, image_size, aspect
    self.image_mean, self.image_std = image_mean, image_std
    self.max_length = max_length
    self.image_token_id = image_token_id
    self.for_generation = for_generation

  def __call__(self, record):
    def skip(reason, detail):
      return Skip(reason, record["id"], record["source"], detail)

    if "malformed" in record:
      return skip("skipped_malformed", record["malformed"])
    conversations = record["conversations"]
    text_only = record.get("image") is None
    if text_only and records_lib.has_image_token(conversations):
      return skip("skipped_missing_image",
                  f"{records_lib.IMAGE_TOKEN} in the user's turns but the record names no image")
    if text_only and self.for_generation:
      return skip("skipped_missing_image", "the record names no image to ask about")
    if not text_only and not records_lib.has_image_token(conversations):
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
    if text_only and self.image_token_id in ids:
      return skip("skipped_missing_image",
                  f"the template puts {records_lib.IMAGE_TOKEN} in every prompt but the record "
                  "names no image")
    if not text_only and ids.count(self.image_token_id) != 1:
      return skip("skipped_no_image_token",
                  f"the prompt holds no {records_lib.IMAGE_TOKEN}: past max_length={self.max_length} "
                  "or, for generation, not in the first question")
    pixels = self.blank_pixels() if text_only else self.pixels(record["image"], skip)
    if isinstance(pixels, Skip):
      return pixels
    question_ids = self.tokenizer.encode_with_special_tokens(
        records_lib.first_question(conversations))[:self.max_length]
    # A question that is only <image> still gives the query pass one token.
    question_ids = question_ids or [self.tokenizer.eos_id]
    example = {
        "input_ids": np.asarray(ids, np.int32),
        "attention_mask": np.ones(len(ids), np.int32),
        "pixels": pixels,
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

  def pixels(self, image, skip):
    """The preprocessed image (H, W, 3), or a Skip when it is missing or undecodable."""
    image_name = image if isinstance(image, str) else "in-memory image"
    try:
      loaded = images.load_image(image)
    except FileNotFoundError:
      return skip("skipped_missing_image", f"image file not found: {image_name}")
    except images.BadImageError as e:
      return skip("skipped_bad_image", str(e))
    return images.preprocess_image(loaded, kind=self.image_kind, image_size=self.image_size,
                                   aspect=self.aspect, mean=self.image_mean, std=self.image_std)

  def blank_pixels(self):
    """A text-only row's (H, W, 3) zeros: zero after normalization, as LLaVA's torch.zeros."""
    return np.zeros((self.image_size, self.image_size, 3), np.float32)

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
