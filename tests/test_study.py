"""The one-command study at toy scale: the shared tower and every LLM size trained, each
scored at every budget with own and shuffled images, the report written, and a rerun
resumes (nothing retrained, nothing re-scored)."""
import json
import os

from vlm_jax import configs, study


def test_study_writes_the_report_and_a_rerun_resumes(tmp_path, monkeypatch):
  monkeypatch.setenv("VLM_JAX_CACHE", str(tmp_path / "cache"))
  config = configs.load(os.path.join(
      configs.CONFIG_DIR, "study", "tiny.py:sizes=xs+s,budgets=1+4,tasks=facts+ocr,"
      "steps=2,tower_steps=2,batch=8,eval_examples=4,workers=2"))
  config.bootstrap = 5
  workdir = str(tmp_path / "study")
  report = study.run(config, workdir)

  rows = json.load(open(os.path.join(workdir, "results.json")))
  assert sorted((r["benchmark"], r["llm_size"], r["visual_tokens"]) for r in rows) == [
      (task, size, v) for task in ("facts", "ocr") for size in ("s", "xs") for v in (1, 4)]
  assert len({r["llm_params_b"] for r in rows}) == 2
  assert all(r["n_scored"] == 4 and r["answer_ce"] > 0 and 0 <= r["accuracy_all_shuffled"] <= 1
             for r in rows)
  text = open(report).read()
  for task in ("facts", "ocr"):
    assert f"## {task}" in text and os.path.exists(os.path.join(workdir, f"{task}_frontier.png"))
  assert "| configuration | V=1 | V=4 |" in text and "α" in text
  assert "step 2:" in open(os.path.join(workdir, "logs", "xs.log")).read()
  assert "step 2:" in open(os.path.join(workdir, "logs", "tower.log")).read()

  models = [os.path.join(workdir, *parts, "model", "config.json")
            for parts in (("tower",), ("train", "xs"), ("train", "s"))]
  assert json.load(open(models[0]))["kind"] == "vision"
  stamps = [os.path.getmtime(m) for m in models]
  assert study.run(config, workdir) == report
  assert [os.path.getmtime(m) for m in models] == stamps
  assert json.load(open(os.path.join(workdir, "results.json"))) == rows
