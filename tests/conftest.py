"""Test-wide settings: offline hub, 8 host devices for the sharding tests, XLA's backend
optimization level 0 (compiles several times faster; no test asserts a speed), inherited
by the tests' subprocesses, and one persistent compilation cache for the session."""
import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8 "
                                   "--xla_backend_optimization_level=0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402  (after the environment above, which jax reads on import)
import pytest  # noqa: E402
from jax.experimental.compilation_cache import compilation_cache  # noqa: E402

_CACHE_OPTIONS = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
                  "jax_persistent_cache_min_entry_size_bytes")


@pytest.fixture(scope="session", autouse=True)
def shared_compilation_cache(tmp_path_factory):
  """Points jax's persistent compilation cache at a folder shared by this session's
  workers, so a program that several tests (or a resumed run) compile compiles once."""
  root = tmp_path_factory.getbasetemp()
  if os.environ.get("PYTEST_XDIST_WORKER"):
    root = root.parent
  saved = {name: getattr(jax.config, name) for name in _CACHE_OPTIONS}
  for name, value in zip(_CACHE_OPTIONS, (str(root / "jax_cache"), 0.0, -1)):
    jax.config.update(name, value)
  compilation_cache.reset_cache()
  yield
  for name, value in saved.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()
