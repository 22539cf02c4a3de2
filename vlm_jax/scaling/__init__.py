"""Scaling laws for VLM error in LLM size and visual tokens, and the inference-optimal frontier."""
from vlm_jax.scaling.cost import CostFn, paper_inference_flops
from vlm_jax.scaling.fit import UndeterminedLawError, fit_scaling_law
from vlm_jax.scaling.frontier import (FrontierPoint, frontier, measured_frontier,
                                      optimal_visual_tokens)
from vlm_jax.scaling.io import (ScalingPoints, incomplete_rows, load_paper_reference, load_points,
                                n_rows_without, points_from_paper_table, points_from_rows,
                                read_rows, row_metric)
from vlm_jax.scaling.law import Fit, law_error
from vlm_jax.scaling.plot import (AT_ZERO, Panel, describe_fit, describe_v_star,
                                  format_estimate, format_interval, format_params, plot_frontier,
                                  plot_panels)
