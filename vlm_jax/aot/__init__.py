"""Ahead-of-time compilation for TPU slices: does a step fit a pod, and what does it run?

`compile_step(config, "v5p-64")` compiles a training (or prefill / decode) step for a
slice's chips on any machine with libtpu installed, without the TPUs and without
allocating anything, and reports per-chip memory, fit, FLOPs and collectives;
`search_microbatches` finds the fewest microbatches with which the training step fits.
"""
from vlm_jax.aot.compiler import CompileReport, compile_step, search_microbatches
from vlm_jax.aot.topology import LibtpuUnavailableError, TpuSlice, parse_slice
