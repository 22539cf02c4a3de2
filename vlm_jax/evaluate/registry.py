"""Registries of the evaluation harness: scorers and benchmarks, found by name."""
from vlm_jax.registry import Registry

# name -> score(predictions, annotations, **options) -> dict (see scorers/common.py).
SCORERS = Registry("scorer")
# name -> Benchmark (see benchmarks/benchmark.py).
BENCHMARKS = Registry("benchmark")
