"""Ahead-of-time compilation for TPU slices: does a step fit a pod, and what does it run?

`compile_step(config, "v5p-64")` compiles a training (or prefill / decode) step for a
slice's chips on any machine with libtpu installed, without the TPUs and without
allocating anything, and reports per-chip memory, fit, FLOPs and collectives.
"""
from vlm_jax.aot.compiler import CompileReport, compile_step
from vlm_jax.aot.topology import LibtpuUnavailableError, TpuSlice, parse_slice
