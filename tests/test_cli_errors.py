"""`vlm-jax` turns bad input into one line on stderr and exit status 2 (--debug: the traceback).

Every case fails before a model is built or compiled.
"""
import os
import subprocess
import sys

import pytest

from vlm_jax import cli, configs, distributed, errors, train

TINY = os.path.join(configs.CONFIG_DIR, "train", "tiny.py")
EVAL = os.path.join(configs.CONFIG_DIR, "eval", "builtin.py")
TINY_SIZES = "known: xs, s, m, l"


def user_error(capsys, argv):
  """The one stderr line of `vlm-jax ARGV`, which must exit with status 2."""
  assert cli.main(argv) == 2
  captured = capsys.readouterr()
  [line] = captured.err.splitlines()
  assert line.startswith(f"vlm-jax {argv[0]}: error: ")
  assert "Traceback" not in captured.err and not captured.out
  return line


@pytest.mark.parametrize("argv, expected", [
    # A missing config file, naming the files beside it.
    (["train", "--config", os.path.join(configs.CONFIG_DIR, "train", "tny.py"), "--workdir", "w"],
     ["no config file", "tny.py", "holds: paper.py, tiny.py"]),
    # A typo in a config argument names the arguments.
    (["train", "--config", f"{TINY}:sise=s", "--workdir", "w"],
     ["unknown config argument 'sise'", "known: size, budget, compressor"]),
    (["train", "--config", f"{TINY}:s", "--workdir", "w"], ["'s' is not KEY=VALUE", "keys: size"]),
    # Unknown preset values name the known ones, without KeyError's quotes.
    (["train", "--config", f"{TINY}:size=huge", "--workdir", "w"],
     ["unknown tiny_llm size 'huge'", TINY_SIZES]),
    (["train", "--config", f"{TINY}:stage=3", "--workdir", "w"],
     ["unknown stage '3'", "known: all, 1, 2"]),
    (["study", "--config", os.path.join(configs.CONFIG_DIR, "study", "tiny.py:sizes=xs+huge")],
     ["unknown tiny_llm size 'huge'", TINY_SIZES]),
    (["flops", "--model", "vlm:compressor=quicc", "--text-tokens", "5"],
     ["unknown compressor 'quicc'", "quecc"]),
    (["flops", "--model", "qwen9", "--text-tokens", "5"],
     ["unknown model preset 'qwen9'", "qwen1_5_7b"]),
    # A value of the wrong type.
    (["flops", "--model", "vlm:budget=abc", "--text-tokens", "5"],
     ["budget='abc' is not of the type of its default 16 (int)"]),
    # An unknown --set key names the known ones.
    (["train", "--config", TINY, "--workdir", "w", "--set", "total_step=5"],
     ["no field 'total_step'", "total_steps"]),
    # Missing folders.
    (["convert", "/no/such/folder", "out"], ["/no/such/folder is not a folder"]),
    (["eval", "--config", f"{EVAL}:num_examples=2", "--checkpoints", "/no/such/checkpoint",
      "--workdir", "w"], ["/no/such/checkpoint is not a model checkpoint"]),
    (["fit", "/no/such/results.json"], ["No such file or directory: /no/such/results.json"]),
    # A flag value the command cannot serve.
    (["plan", "--budget-gflops", "1", "--text-tokens", "50"],
     ["1 GFLOPs affords no configuration", "costs"]),
])
def test_user_errors_are_one_line(capsys, tmp_path, monkeypatch, argv, expected):
  monkeypatch.chdir(tmp_path)
  line = user_error(capsys, argv)
  for part in expected:
    assert part in line
  assert "KeyError" not in line and '"' not in line  # str(KeyError) would quote the message


def test_resuming_a_run_of_another_model(capsys, tmp_path):
  # A workdir as `vlm-jax train` leaves it, for an xs model: the check reads only config.json.
  run = train.resolve(configs.load(f"{TINY}:size=xs"))
  (tmp_path / "checkpoints").mkdir()
  (tmp_path / "config.json").write_text(run.to_json())
  line = user_error(capsys, ["train", "--config", f"{TINY}:size=s", "--workdir", str(tmp_path)])
  assert "holds a run of another model, so it cannot resume" in line
  assert "hidden_size=32 (config: 48)" in line


def test_bad_flag_value_is_a_usage_error(capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["flops", "--model", "vlm", "--text-tokens", "5", "--visual-tokens", "4,many"])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith("usage: vlm-jax flops") and "Traceback" not in err
  assert err.splitlines()[-1] == ("vlm-jax flops: error: argument --visual-tokens: '4,many' is "
                                  "not a comma-separated list of ints")


def test_debug_shows_the_traceback(capsys):
  with pytest.raises(errors.UnknownNameError, match="known: xs, s, m, l"):
    cli.main(["--debug", "flops", "--model", "vlm:llm=tiny_llm:size=huge", "--text-tokens", "5"])
  assert not capsys.readouterr().err


def test_bugs_keep_their_traceback(monkeypatch):
  def broken(*args, **kwargs):
    raise ValueError("a bug, not bad input")
  monkeypatch.setattr("vlm_jax.scaling.optimal_visual_tokens", broken)
  with pytest.raises(ValueError, match="a bug"):
    cli.main(["plan", "--budget-gflops", "1000", "--text-tokens", "50"])


@pytest.mark.parametrize("debug", [False, True])
def test_console_script(debug):
  script = os.path.join(os.path.dirname(sys.executable), "vlm-jax")
  if not os.path.exists(script):
    pytest.skip("the vlm-jax console script is not installed beside this Python")
  result = subprocess.run(
      [script, *(["--debug"] if debug else []), "flops", "--model", "vlm:llm=tiny_llm:size=huge",
       "--text-tokens", "5"], capture_output=True, text=True, timeout=120)
  if debug:
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "known: xs, s, m, l" in result.stderr
  else:
    assert result.returncode == 2 and not result.stdout
    assert result.stderr.splitlines() == [
        "vlm-jax flops: error: unknown tiny_llm size 'huge'; known: xs, s, m, l"]


def test_no_tpu_backend_noise_without_a_tpu():
  pytest.importorskip("libtpu")
  if distributed.has_tpu_chips():
    pytest.skip("this machine has TPU chips")
  # As under the console script: jax is imported after cli.main, then starts its backends.
  code = ("import sys; from vlm_jax import cli; cli.main(sys.argv[1:]); "
          "import jax; print(jax.devices())")
  env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
  result = subprocess.run([sys.executable, "-c", code, "plan", "--budget-gflops", "1000",
                           "--text-tokens", "50"], capture_output=True, text=True, env=env,
                          timeout=120)
  assert result.returncode == 0, result.stderr
  assert "TPU" not in result.stderr and not result.stderr.strip()


@pytest.mark.parametrize("gpu, plugin, platforms", [
    (False, False, "cpu"), (False, True, "cpu"), (True, False, "cpu"), (True, True, "cuda,cpu")])
def test_platforms_without_tpu_keep_a_usable_gpu(tmp_path, monkeypatch, gpu, plugin, platforms):
  device = tmp_path / "nvidia0"
  if gpu:
    device.touch()
  if plugin:  # laid out as the jax-cuda12-pjrt wheel installs it
    (tmp_path / "jax_plugins" / "xla_cuda12").mkdir(parents=True)
    (tmp_path / "jax_plugins" / "xla_cuda12" / "__init__.py").touch()
    monkeypatch.syspath_prepend(str(tmp_path))
  monkeypatch.setitem(cli.GPU_PLATFORMS, "cuda", ((str(device),), "xla_cuda"))
  monkeypatch.setitem(cli.GPU_PLATFORMS, "rocm", ((str(tmp_path / "kfd"),), "xla_rocm"))
  assert cli._platforms_without_tpu() == platforms
