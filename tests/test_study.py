"""The one-command study at toy scale: every run trained and scored, the report written,
and a rerun resumes (nothing retrained, nothing re-scored)."""
import json
import os

from vlm_jax import configs, study


def test_study_writes_the_report_and_a_rerun_resumes(tmp_path, monkeypatch):
  monkeypatch.setenv("VLM_JAX_CACHE", str(tmp_path / "cache"))
  config = configs.load(os.path.join(
      configs.CONFIG_DIR, "study", "tiny.py:sizes=xs+s,budgets=1+4,tasks=easy_vqa+ocr,"
      "steps=2,batch=8,eval_examples=4,workers=2"))
  config.bootstrap = 5
  workdir = str(tmp_path / "study")
  report = study.run(config, workdir)

  rows = json.load(open(os.path.join(workdir, "results.json")))
  assert sorted((r["benchmark"], r["visual_tokens"]) for r in rows) == [
      (task, v) for task in ("easy_vqa", "ocr") for v in (1, 1, 4, 4)]
  assert len({r["llm_params_b"] for r in rows}) == 2
  assert all(r["n_scored"] == 4 for r in rows)
  text = open(report).read()
  for task in ("easy_vqa", "ocr"):
    assert f"## {task}" in text and os.path.exists(os.path.join(workdir, f"{task}_frontier.png"))
  assert "| V=1 | V=4 |" in text and "alpha" in text
  assert "step 2:" in open(os.path.join(workdir, "logs", "xs_v1.log")).read()

  models = [os.path.join(workdir, "train", f"{s}_v{v}", "model", "config.json")
            for s in ("xs", "s") for v in (1, 4)]
  stamps = [os.path.getmtime(m) for m in models]
  assert study.run(config, workdir) == report
  assert [os.path.getmtime(m) for m in models] == stamps
  assert json.load(open(os.path.join(workdir, "results.json"))) == rows
