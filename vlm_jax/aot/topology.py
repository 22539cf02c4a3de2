"""TPU slices by their Cloud names (`v5p-64`, `v5e-16`...) as compile-only devices.

libtpu describes any slice's chips without the hardware being there:
`jax.experimental.topologies.get_topology_desc` returns devices that `jax.jit(...)
.lower(...).compile()` can target but that cannot run anything. v4 and v5p slices are
named by TensorCores (two per chip, one megacore device each: v5p-64 is 32 chips);
v5e and v6e by chips (one core each). Chip grids follow the usual slice shapes
(v5p-8 2x2x1, v5p-64 2x4x4, v5p-128 4x4x4; v5e-16 4x4).
"""
import dataclasses
import math
import os

from vlm_jax import distributed

GIB = 2 ** 30
INSTALL_HINT = ("pip install -e '.[aot]' (libtpu alone; '.[tpu]' has it too), or "
                "pip install \"libtpu==0.0.42.*\", the libtpu of jax 0.10.2")


@dataclasses.dataclass(frozen=True)
class Generation:
  libtpu_name: str  # the prefix of libtpu's topology names
  cores_per_chip: int  # the unit of the slice name's number
  grid_dims: int  # 3: a 3D torus (v4, v5p); 2: a 2D chip grid (v5e, v6e)
  chip_config: str  # libtpu's chip_config_name: one megacore device per chip, or one core
  hbm_gib: int  # HBM per chip


GENERATIONS = {
    "v4": Generation("v4", 2, 3, "megacore", 32),
    "v5p": Generation("v5", 2, 3, "megacore", 95),
    "v5e": Generation("v5e", 1, 2, "default", 16),
    "v6e": Generation("v6e", 1, 2, "default", 32),
}
ALIASES = {"v5litepod": "v5e"}


class LibtpuUnavailableError(RuntimeError):
  """libtpu is not installed, or cannot describe TPU topologies."""


@dataclasses.dataclass(frozen=True)
class TpuSlice:
  name: str  # e.g. "v5p-64"
  generation: str  # a key of GENERATIONS
  chip_grid: tuple  # chips along each torus / grid dimension

  @property
  def chips(self):
    return math.prod(self.chip_grid)

  @property
  def hbm_bytes(self):
    return GENERATIONS[self.generation].hbm_gib * GIB

  @property
  def topology_name(self):
    """libtpu's name of the slice, e.g. 'v5:2x4x4'."""
    return f"{GENERATIONS[self.generation].libtpu_name}:{'x'.join(map(str, self.chip_grid))}"


def chip_grid(chips, dims):
  """The slice shape of `chips` chips (1, or a power of two >= 4) on a `dims`-D grid.

  From 2x2(x1), each doubling doubles the last of the smallest sides:
  3D 4 -> 2x2x1, 8 -> 2x2x2, 16 -> 2x2x4, 32 -> 2x4x4, 64 -> 4x4x4, 128 -> 4x4x8;
  2D 4 -> 2x2, 8 -> 2x4, 16 -> 4x4, 32 -> 4x8.
  """
  if chips == 1 and dims == 2:
    return (1, 1)
  if chips < 4 or chips & (chips - 1):
    raise ValueError(f"no standard slice of {chips} chips: use 4, 8, 16, ... chips"
                     + (" (or 1)" if dims == 2 else ""))
  grid = [2, 2] + [1] * (dims - 2)
  while math.prod(grid) < chips:
    smallest = min(grid)
    last = max(i for i, side in enumerate(grid) if side == smallest)
    grid[last] *= 2
  return tuple(grid)


def parse_slice(name):
  """'v5p-64' -> TpuSlice; generations: v4, v5p, v5e (or v5litepod), v6e."""
  generation, sep, count = name.partition("-")
  generation = ALIASES.get(generation, generation)
  if not sep or generation not in GENERATIONS or not count.isdigit():
    raise ValueError(f"unknown TPU slice {name!r}: expected <generation>-<count> with "
                     f"generation one of {sorted(GENERATIONS)}, e.g. v5p-64 or v5e-16")
  spec = GENERATIONS[generation]
  if int(count) % spec.cores_per_chip:
    raise ValueError(f"{name}: a {generation} slice counts {spec.cores_per_chip} cores per chip")
  return TpuSlice(name, generation, chip_grid(int(count) // spec.cores_per_chip, spec.grid_dims))


def _wraparound(grid):
  """Which sides close into rings: all of a 3D slice of whole 4x4x4 cubes, 16-chip 2D sides."""
  if len(grid) == 3:
    return (min(grid) >= 4,) * 3
  return (grid[0] == 16, grid[1] == 16, False)


def require_libtpu():
  """Raises LibtpuUnavailableError, with the install command, when libtpu is missing."""
  try:
    import libtpu  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError as e:
    raise LibtpuUnavailableError(
        f"compiling for a TPU topology needs libtpu, which is not installed: {INSTALL_HINT}"
    ) from e


def devices(tpu_slice):
  """The slice's compile-only devices (one per chip), in libtpu's order."""
  require_libtpu()
  # Compiling only: several processes (tests, a table in the background) may load libtpu
  # at once, which its lock file forbids by default.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  if not distributed.has_tpu_chips():
    # Else libtpu looks for this host's own TPU and logs that it finds none.
    os.environ.setdefault("TPU_ACCELERATOR_TYPE", tpu_slice.name)
    os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  import jax  # pylint: disable=import-outside-toplevel
  from jax.experimental import topologies  # pylint: disable=import-outside-toplevel

  spec = GENERATIONS[tpu_slice.generation]
  try:
    found = topologies.get_topology_desc(
        platform="tpu", topology_name=tpu_slice.topology_name, chip_config_name=spec.chip_config,
        chips_per_host_bounds=(1, 1, 1) if tpu_slice.chips == 1 else (2, 2, 1), num_slices=1,
        wrap=_wraparound(tpu_slice.chip_grid)).devices
  except (jax.errors.JaxRuntimeError, RuntimeError) as e:
    raise LibtpuUnavailableError(
        f"libtpu could not describe {tpu_slice.name} ({tpu_slice.topology_name}): {e}. "
        f"Is it the libtpu matching jax {jax.__version__}? {INSTALL_HINT}") from e
  if len(found) != tpu_slice.chips:
    raise RuntimeError(f"libtpu gave {len(found)} devices for {tpu_slice.name}, "
                       f"expected {tpu_slice.chips}")
  return found
