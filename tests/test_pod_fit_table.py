"""tools/pod_fit_table.py's per-chip batch search against brute force on memory models."""
import importlib.util
import os

import pytest

_PATH = os.path.join(os.path.dirname(__file__), os.pardir, "tools", "pod_fit_table.py")
_SPEC = importlib.util.spec_from_file_location("pod_fit_table", _PATH)
pod_fit_table = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(pod_fit_table)

GIB = 2 ** 30
HBM = 95 * GIB
FIXED = 3 * GIB  # arguments and code
SHARDS = 4


def fake_row(rows, temporaries):
  """A compile report as the tool stores it, from a memory model's temporaries."""
  peak = FIXED + temporaries(rows)
  fits = peak <= HBM
  return {"mesh": {"data": 1, "fsdp": SHARDS, "tensor": 1}, "sizes": {"batch": rows * SHARDS},
          "hbm_bytes": HBM, "compiled": fits, "fits": fits, "peak_bytes": peak,
          "temp_bytes": temporaries(rows) if fits else None,
          "required_temp_bytes": None if fits else temporaries(rows)}


@pytest.mark.parametrize("temporaries", [
    lambda r: 2 * GIB + r * 0.37 * GIB,  # linear with a fixed part
    lambda r: 0.1 * GIB + r * 0.21 * GIB + r * r * 0.004 * GIB,  # convex
    lambda r: 5 * GIB + r * 2.9 * GIB,  # little room: a few rows
])
def test_largest_rows_matches_brute_force(temporaries):
  compiled = []

  def compile_rows(rows):
    compiled.append(rows)
    return fake_row(rows, temporaries)

  fit = fake_row(pod_fit_table.ROW_STEP, temporaries)
  assert fit["fits"]
  best, miss = pod_fit_table.largest_rows(fit, compile_rows, max_compiles=8)
  step = pod_fit_table.ROW_STEP
  expected = max(r for r in range(step, 10_000, step) if fake_row(r, temporaries)["fits"])
  assert pod_fit_table.rows_per_chip(best) == expected
  assert pod_fit_table.rows_per_chip(miss) == expected + step and not miss["fits"]
  assert len(compiled) <= 6, compiled  # brute force would compile dozens


def test_largest_rows_brackets_the_answer_when_the_search_runs_out():
  temporaries = lambda r: 0.1 * GIB + r * 0.21 * GIB + r * r * 0.004 * GIB
  step = pod_fit_table.ROW_STEP
  expected = max(r for r in range(step, 10_000, step) if fake_row(r, temporaries)["fits"])
  best, miss = pod_fit_table.largest_rows(fake_row(step, temporaries),
                                          lambda rows: fake_row(rows, temporaries),
                                          max_compiles=2)
  assert best["fits"] and not miss["fits"]
  assert pod_fit_table.rows_per_chip(best) <= expected < pod_fit_table.rows_per_chip(miss)


def test_largest_rows_leaves_the_top_open_when_nothing_misses():
  # Temporaries that stop growing: every probe fits, so no miss brackets the answer.
  best, miss = pod_fit_table.largest_rows(fake_row(8, lambda r: GIB),
                                          lambda rows: fake_row(rows, lambda r: GIB),
                                          max_compiles=8)
  assert miss is None and best["fits"]
