"""The error law Y(N, T) = A·N^(−α)·T^(−β) + D and its fitted parameters."""
import dataclasses
import json

import numpy as np


def law_error(params, llm_params_b, tokens):
  """Y for params (A, alpha, beta, D); N in billions, T tokens; broadcasts."""
  a, alpha, beta, d = params
  return a * np.power(llm_params_b, -alpha) * np.power(tokens, -beta) + d


@dataclasses.dataclass(frozen=True)
class Fit:
  """A fitted law; `*_ci` are bootstrap percentile intervals (None without bootstrap).

  With `tokens_include_text` the law's T is Q + V (text not cached), else T = V.
  `text_tokens` is the Q of the fitted measurements.
  """
  A: float
  alpha: float
  beta: float
  D: float
  rmse: float
  n_points: int
  text_tokens: float = 0.0
  tokens_include_text: bool = False
  A_ci: tuple[float, float] | None = None
  alpha_ci: tuple[float, float] | None = None
  beta_ci: tuple[float, float] | None = None
  D_ci: tuple[float, float] | None = None
  confidence: float = 0.95
  bootstrap: int = 0
  resample: str = ""  # the bootstrap's: residuals or points (fit.RESAMPLING)

  @property
  def params(self):
    return (self.A, self.alpha, self.beta, self.D)

  def tokens(self, visual_tokens, text_tokens=None):
    """The law's T for V visual tokens and Q text tokens (default: the fit's Q)."""
    if not self.tokens_include_text:
      return np.asarray(visual_tokens, dtype=float)
    q = self.text_tokens if text_tokens is None else text_tokens
    return np.asarray(visual_tokens, dtype=float) + q

  def predict_error(self, llm_params_b, visual_tokens, text_tokens=None):
    """Predicted error (1 − accuracy); broadcasts over N and V."""
    return law_error(self.params, np.asarray(llm_params_b, dtype=float),
                     self.tokens(visual_tokens, text_tokens))

  def to_dict(self):
    fields = dataclasses.asdict(self)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}

  @classmethod
  def from_dict(cls, data):
    names = {f.name for f in dataclasses.fields(cls)}
    required = {f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING}
    missing = sorted(required - set(data))
    if missing:
      raise ValueError(f"fit is missing {', '.join(missing)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v
              for k, v in data.items() if k in names}
    return cls(**kwargs)

  def save(self, path):
    with open(path, "w") as f:
      json.dump(self.to_dict(), f, indent=1)

  @classmethod
  def load(cls, path):
    with open(path) as f:
      return cls.from_dict(json.load(f))
