"""The study's report.md, read at a glance: the task families' β side by side, then per
family the measured accuracies and answer cross-entropies, the law
Y = A·N^-α·V^-β + D fitted to the error and to the cross-entropy, the inference-optimal
frontier, and the paper's Figure 1 (<task>_frontier.png)."""
import dataclasses
import itertools
import os
from collections.abc import Callable

import numpy as np

from vlm_jax import scaling

SHUFFLED = "accuracy_all_shuffled"
PARAMETERS = (("A", "A"), ("α", "alpha"), ("β", "beta"), ("D", "D"))
MIN_POINTS = 4  # the law's parameters


@dataclasses.dataclass(frozen=True)
class YKind:
  """A Y the law is fitted to: the rows' metric, how the report names and shows it."""
  metric: str
  name: str  # of Y: a table header, the figure's y label
  short: str  # of the fit: '<short> fit'
  value_name: str  # of a configuration's value in the frontier tables
  show: Callable[[float], str]  # Y -> that value, as text
  fit_file: str  # <task>_<fit_file>.json
  may_be_absent: bool  # rows may lack the metric (the kind is then skipped)


ERROR = YKind("accuracy_all", scaling.plot.ERROR_LABEL, "error", "accuracy (%)",
              lambda y: f"{100 * (1 - y):.1f}", "fit", False)
CROSS_ENTROPY = YKind("answer_ce", "answer CE (nats per token)", "answer CE",
                      "answer CE (nats)", lambda y: f"{y:.3f}", "ce_fit", True)
KINDS = (ERROR, CROSS_ENTROPY)


@dataclasses.dataclass(frozen=True)
class Family:
  """One task family's rows and the laws fitted to them."""
  task: str
  rows: list
  text_tokens: float  # Q: the mean prompt length
  sizes: dict  # {N in billions: size name}, N ascending
  fits: dict  # {YKind: (ScalingPoints, Fit)}
  unfitted: dict  # {YKind: why there is no fit}


def write(config, rows, workdir, setup):
  """Writes <workdir>/report.md, the families' fits and figures; -> report.md's path.

  config: tasks, bootstrap, budget_multiples, grid_tokens; rows: one per
  (task, model, V) from the harness; setup: a Markdown paragraph on the models
  and their training, put under the title.
  """
  families = [_family(task, [r for r in rows if r["benchmark"] == task], config.bootstrap)
              for task in _tasks(config, rows)]
  lines = ["# Scaling study", "", setup, ""]
  lines += _contrast_section(families)
  lines += _incomplete_section(rows, workdir)
  for family in families:
    lines += _family_section(config, family, workdir)
  path = os.path.join(workdir, "report.md")
  with open(path, "w") as f:
    f.write("\n".join(lines).rstrip() + "\n")
  return path


def _tasks(config, rows):
  """The configured task families, then any other the rows name."""
  return list(config.tasks) + sorted({r["benchmark"] for r in rows} - set(config.tasks))


def _family(task, rows, bootstrap):
  """The family's rows with the law fitted to each Y they allow."""
  if not rows:
    return Family(task, rows, 0.0, {}, {}, {})
  text_tokens = float(np.mean([r["text_tokens"] for r in rows]))
  sizes = dict(sorted({float(r["llm_params_b"]): r["llm_size"] for r in rows}.items()))
  fits, unfitted = {}, {}
  for kind in KINDS:
    lacking = scaling.n_rows_without(rows, kind.metric) if kind.may_be_absent else 0
    if lacking:
      unfitted[kind] = f"{lacking} of {len(rows)} runs record no {kind.metric}"
      continue
    points = scaling.points_from_rows(rows, metric=kind.metric)
    if len(points) < MIN_POINTS:
      unfitted[kind] = (f"{len(points)} configurations are too few for the law's "
                        f"{MIN_POINTS} parameters")
    else:
      try:
        fits[kind] = (points, scaling.fit_scaling_law(points, text_tokens, bootstrap=bootstrap))
      except scaling.UndeterminedLawError as error:
        unfitted[kind] = str(error)
  return Family(task, rows, text_tokens, sizes, fits, unfitted)


# ------------------------------------------------------------------------ the contrast


def _contrast_section(families):
  """Per Y, the families' β side by side; then the families without a fit, and why."""
  lines = ["## The contrast", ""]
  for kind in KINDS:
    lines += _contrast(families, kind)
  unfitted = [f"- {family.task}: no {kind.short} fit: {why}."
              for family in families for kind, why in family.unfitted.items()]
  lines += unfitted + ([""] if unfitted else [])
  trends = [line for family in families if family.rows for line in _trends(family)]
  return lines + (["Measured error (1 − accuracy), without the law:", ""] + trends + [""]
                  if trends else [])


def _trends(family):
  """Two lines: at which sizes the error falls with V, at which V it falls with N
  (falls: the fewest worst and the most best, as the paper's curves do)."""
  error = {(float(r["llm_params_b"]), float(r["visual_tokens"])): 1 - scaling.row_metric(r)
           for r in family.rows}
  sizes, budgets = list(family.sizes), sorted({v for _, v in error})
  if len(sizes) < 2 or len(budgets) < 2:
    return []
  along_v = {family.sizes[n]: _falls([error.get((n, v)) for v in budgets]) for n in sizes}
  along_n = {f"V={v:g}": _falls([error.get((n, v)) for n in sizes]) for v in budgets}
  return [f"- {family.task}: error falls with V (V={budgets[0]:g} worst, V={budgets[-1]:g} "
          f"best) at {_where(along_v, 'size')}; with N (`{family.sizes[sizes[0]]}` worst, "
          f"`{family.sizes[sizes[-1]]}` best) at {_where(along_n, 'V')}."]


def _falls(errors):
  """Whether the first of `errors` is the highest and the last the lowest (None: unmeasured)."""
  if None in errors:
    return False
  return errors[0] == max(errors) > errors[-1] == min(errors)


def _where(holds, what):
  """'every size', 'no V' or the names where it holds."""
  names = [name for name, held in holds.items() if held]
  if len(names) == len(holds):
    return f"every {what}"
  return f"no {what}" if not names else ", ".join(names) + " only"


def _contrast(families, kind):
  """The families' β, α and V* fitted to `kind`, highest β first, and in words whether
  each pair's β intervals overlap."""
  fitted = sorted(((f.task, f.fits[kind][1]) for f in families if kind in f.fits),
                  key=lambda task_fit: -task_fit[1].beta)
  if not fitted:
    return []
  lines = [f"Fitted to {kind.name}, {_interval_name(fitted[0][1])}:", "",
           "| task family | β (visual tokens) | α (LLM parameters) | V* |", "|---|---|---|---|"]
  for task, fit in fitted:
    lines.append(f"| {task} | {scaling.format_estimate(fit.beta, fit.beta_ci)} | "
                 f"{scaling.format_estimate(fit.alpha, fit.alpha_ci)} | "
                 f"{scaling.describe_v_star(fit, fit.text_tokens)} |")
  lines.append("")
  pairs = [f"- {_compare_beta(*high, *low)}" for high, low in itertools.combinations(fitted, 2)]
  return lines + pairs + ([""] if pairs else [])


def _interval_name(fit):
  if fit.bootstrap:
    return (f"{fit.confidence:.0%} intervals from {fit.bootstrap} bootstrap resamples of the "
            f"{fit.resample}")
  return "no intervals (no bootstrap)"


def _compare_beta(task_high, fit_high, task_low, fit_low):
  """A sentence: whether β of task_high, at least task_low's, is told apart from it."""
  said = (f"β of {task_high} ({scaling.format_estimate(fit_high.beta, fit_high.beta_ci)}) "
          f"exceeds β of {task_low} ({scaling.format_estimate(fit_low.beta, fit_low.beta_ci)})")
  if fit_high.beta_ci is None or fit_low.beta_ci is None:
    return f"{said}; without intervals these runs cannot say whether that is chance."
  if fit_high.beta_ci[0] > fit_low.beta_ci[1]:
    return (f"{said} and their intervals do not overlap: visual tokens matter more to "
            f"{task_high} than to {task_low}.")
  return f"{said}, but their intervals overlap: these runs do not tell the two apart."


def _incomplete_section(rows, workdir):
  """The runs with unanswered or skipped questions, or a line saying there are none."""
  listed = scaling.incomplete_rows(rows)
  if not listed:
    return ["Every question of every run was answered.", ""]
  lines = ["## Unanswered or skipped questions", "",
           "The tables and fits below count these as wrong:", "",
           "| run | task | V | unanswered | of questions | skipped by the data pipeline |",
           "|---|---|---:|---:|---:|---:|"]
  for row in listed:
    lines.append(f"| {os.path.relpath(row['checkpoint'], workdir)} | {row['benchmark']} | "
                 f"{row['visual_tokens']:g} | {row['n_unanswered']} | {row['n_questions']} | "
                 f"{row['n_skipped']} |")
  return lines + [""]


# ------------------------------------------------------------------------ per family


def _family_section(config, family, workdir):
  lines = [f"## {family.task}", ""]
  if not family.rows:
    return lines + ["No results.", ""]
  lines += _measured_tables(family)
  for kind, why in family.unfitted.items():
    lines += [f"No {kind.short} fit: {why}.", ""]
  if not family.fits:
    return lines
  for kind, (_, fit) in family.fits.items():
    fit.save(os.path.join(workdir, f"{family.task}_{kind.fit_file}.json"))
  lines += _fit_table(family)
  for kind, (points, fit) in family.fits.items():
    lines += _frontier_table(config, family, kind, points, fit)
  return lines + _figure(config, family, workdir)


def _measured_tables(family):
  """Accuracy (with the images-shuffled one) and, where recorded, answer CE per
  configuration (rows, N ascending) and V (columns, ascending)."""
  shuffled = not scaling.n_rows_without(family.rows, SHUFFLED)
  lines = ["Accuracy (%) over all questions, an unanswered one wrong"
           + ("; in parentheses the same model with the images shuffled across questions, "
              "what the question alone earns" if shuffled else "") + ":", ""]
  lines += _grid_table(family, lambda r: f"{100 * scaling.row_metric(r):.1f}" + (
      f" (shuffled {100 * r[SHUFFLED]:.1f})" if shuffled else ""))
  if scaling.n_rows_without(family.rows, CROSS_ENTROPY.metric):
    return lines + [""]
  lines += ["", "Answer-token cross-entropy (nats per token):", ""]
  return lines + _grid_table(family, lambda r: f"{r[CROSS_ENTROPY.metric]:.3f}") + [""]


def _grid_table(family, cell):
  """A Markdown table: a row per LLM size, a column per V, cell(row) in each."""
  by_config = {(float(r["llm_params_b"]), float(r["visual_tokens"])): r for r in family.rows}
  budgets = sorted({v for _, v in by_config})
  lines = ["| configuration | " + " | ".join(f"V={v:g}" for v in budgets) + " |",
           "|---|" + "---:|" * len(budgets)]
  for n, name in family.sizes.items():
    cells = [cell(by_config[n, v]) if (n, v) in by_config else "–" for v in budgets]
    lines.append(f"| {_size(name, n, '`')} | " + " | ".join(cells) + " |")
  return lines


def _size(name, llm_params_b, mark=""):
  """'xs (29k params)', the name between `mark`s."""
  return f"{mark}{name}{mark} ({scaling.format_params(llm_params_b)} params)"


def _fit_table(family):
  """A row per parameter and RMSE, a value and an interval column per fitted Y."""
  fits = [fit for _, fit in family.fits.values()]
  lines = [f"The law Y = A·N^-α·V^-β + D (N in billions of LLM parameters) fitted to "
           f"{fits[0].n_points} configurations, {_interval_name(fits[0])}:", "",
           "| | " + " | ".join(f"{kind.name} | interval" for kind in family.fits) + " |",
           "|---|" + "---:|---|" * len(fits)]
  for symbol, name in PARAMETERS:
    at_zero = 0 if name == "A" else scaling.AT_ZERO  # A of 1e-8 is a real scale (N in B)
    lines.append(f"| {symbol} | " + " | ".join(
        f"{scaling.format_estimate(getattr(fit, name), at_zero=at_zero)} | "
        f"{scaling.format_interval(getattr(fit, f'{name}_ci'), at_zero)}"
        for fit in fits) + " |")
  lines.append("| RMSE | " + " | ".join(f"{fit.rmse:.3g} | " for fit in fits) + " |")
  lines += ["", "Closed-form optimum V* = Q·β/(α−β) at Q text tokens: " + "; ".join(
      f"{kind.short} fit: {scaling.describe_v_star(fit, family.text_tokens)}"
      for kind, (_, fit) in family.fits.items()) + ".", ""]
  return lines


def _frontier_table(config, family, kind, points, fit):
  """The best configuration per budget (multiples of the cheapest's cost): measured,
  and along the law fitted to `kind` (N among the sizes, V whole, at most grid_tokens)."""
  q = family.text_tokens
  cheapest = scaling.paper_inference_flops(points.llm_params_b.min(),
                                           points.visual_tokens.min(), q)
  budgets = [m * cheapest for m in config.budget_multiples]
  measured = scaling.measured_frontier(points, budgets, q)
  fitted = scaling.frontier(fit, budgets, q, llm_params_b=list(family.sizes),
                            v_max=config.grid_tokens, integer_tokens=True)
  lines = [f"Frontier of the {kind.short} fit: the best configuration within each budget "
           "(×: multiples of the cheapest configuration's cost, 2·N·(Q+V) FLOPs), measured "
           "and as the law predicts:", "",
           f"| budget | FLOPs | measured best | {kind.value_name} | the law's best | "
           f"predicted {kind.value_name} |", "|---:|---:|---|---:|---|---:|"]
  for multiple, budget, best, law in zip(config.budget_multiples, budgets, measured, fitted):
    lines.append(f"| ×{multiple:g} | {budget:.3g} | {_configuration(family, best)} | "
                 f"{_value(kind, best)} | {_configuration(family, law)} | {_value(kind, law)} |")
  return lines + [""]


def _configuration(family, point):
  if point is None:
    return "nothing affordable"
  return f"`{family.sizes[point.llm_params_b]}`, V={point.visual_tokens:g}"


def _value(kind, point):
  return "–" if point is None else kind.show(point.error)


def _figure(config, family, workdir):
  """The paper's Figure 1 for the family, one panel per fitted Y, and its caption."""
  panels = [scaling.Panel(points, fit, kind.name) for kind, (points, fit) in
            family.fits.items()]
  labels = {n: _size(name, n) for n, name in family.sizes.items()}
  path = scaling.plot_panels(panels, os.path.join(workdir, f"{family.task}_frontier.png"),
                             family.text_tokens, labels=labels, title=family.task,
                             v_max=config.grid_tokens)
  budgets = ", ".join(f"{v:g}" for v in np.unique(panels[0].points.visual_tokens))
  caption = "; ".join(f"{kind.short} fit: {scaling.describe_fit(fit, family.text_tokens)}"
                      for kind, (_, fit) in family.fits.items())
  return [f"![{family.task}: Y against inference FLOPs]({os.path.basename(path)})", "",
          f"Figure: {family.task}, Y against inference FLOPs 2·N·(Q+V), a colour per LLM "
          f"size, its points at V = {budgets} joined, the law per size dotted and its frontier "
          f"dashed; {caption}.", ""]

