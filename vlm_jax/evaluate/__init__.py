"""Benchmark readers, scorers, prompts and submission writers.

Importing this package registers every scorer in SCORERS and every benchmark
in BENCHMARKS. Scoring rules follow the LLaVA-1.5 evaluation code, with the
lmms-eval variant as `variant="lmms_eval"` where the two differ.
"""
from vlm_jax.evaluate import benchmarks as _benchmarks  # noqa: F401  (registers)
from vlm_jax.evaluate import scorers as _scorers  # noqa: F401  (registers)
from vlm_jax.evaluate.registry import BENCHMARKS, SCORERS

__all__ = ["BENCHMARKS", "SCORERS"]
