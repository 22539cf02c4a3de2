"""One module per benchmark; importing this package registers them all in BENCHMARKS."""
from vlm_jax.evaluate.benchmarks import builtin  # noqa: F401
from vlm_jax.evaluate.benchmarks import gqa  # noqa: F401
from vlm_jax.evaluate.benchmarks import mmbench  # noqa: F401
from vlm_jax.evaluate.benchmarks import mme  # noqa: F401
from vlm_jax.evaluate.benchmarks import pope  # noqa: F401
from vlm_jax.evaluate.benchmarks import scienceqa  # noqa: F401
from vlm_jax.evaluate.benchmarks import seed  # noqa: F401
from vlm_jax.evaluate.benchmarks import textvqa  # noqa: F401
from vlm_jax.evaluate.benchmarks import vizwiz  # noqa: F401
from vlm_jax.evaluate.benchmarks import vqav2  # noqa: F401
from vlm_jax.evaluate.benchmarks.benchmark import Benchmark, BenchmarkData  # noqa: F401
