"""What a benchmark is: a reader, a scorer, a prompt style and a decode length."""
import dataclasses
import os
from typing import Any, Callable, Mapping

from vlm_jax.evaluate.registry import SCORERS


@dataclasses.dataclass
class BenchmarkData:
  """What a reader returns.

  examples: dicts {question_id, image (file path, encoded bytes, or None for a
    text-only question), prompt (user text, no `<image>`, no chat template),
    max_new_tokens, ...benchmark fields}.
  annotations: {question_id: what the scorer needs}, covering every question
    of the question file (those with a missing image too, so they count as
    unanswered); None where the split has no public answers.
  missing_images: image files not found; their examples are left out.
  """
  examples: list
  annotations: Mapping[Any, Any] | None
  missing_images: list


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """reader(**paths, prompt_style=...) -> BenchmarkData; scorer: a SCORERS name.

  layout: reader argument -> path under the benchmark's folder in the
  LLaVA-1.5 evaluation layout (playground/data/eval/<benchmark>/).
  """
  name: str
  reader: Callable[..., BenchmarkData]
  scorer: str
  prompt_style: str
  max_new_tokens: int
  layout: Mapping[str, str]

  def read(self, root=None, **paths):
    """Reads the benchmark from root's LLaVA layout; keyword paths override it."""
    if root is None and not paths and self.layout:
      raise ValueError(f"{self.name}: give the benchmark folder or the paths "
                       f"{', '.join(self.layout)}")
    arguments = {}
    if root is not None:
      arguments = {arg: os.path.join(root, relative) for arg, relative in self.layout.items()}
    arguments.update(paths)
    data = self.reader(prompt_style=self.prompt_style, **arguments)
    for example in data.examples:
      example["max_new_tokens"] = self.max_new_tokens
    return data

  def score(self, predictions, data, **options):
    """Scores {question_id: text} against data.annotations with this benchmark's scorer."""
    if data.annotations is None:
      raise ValueError(f"{self.name}: this split has no annotations to score against; "
                       "write the submission file instead")
    return SCORERS.get(self.scorer)(predictions, data.annotations, **options)
