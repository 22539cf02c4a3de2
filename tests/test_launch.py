"""launch/*.sh: the gcloud commands printed by --dry-run for a v5p-64 slice.

A fake `gcloud` first on PATH records any call, so the tests also see that a
dry run executes nothing and that a real run executes what a dry run prints.
"""
import os
import pathlib
import shlex
import socket
import subprocess
import time

import pytest

LAUNCH = pathlib.Path(__file__).resolve().parents[1] / "launch"
POD = ["--name", "vlm-pod", "--zone", "us-east5-a", "--project", "my-project"]
TPU_VM = ["gcloud", "compute", "tpus", "tpu-vm"]

FAKE_GCLOUD = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$FAKE_GCLOUD_CALLS"
echo "FAKE GCLOUD CALLED" >&2
exit "${FAKE_GCLOUD_RC:-97}"
"""


@pytest.fixture
def launch(tmp_path):
  """Runs a launch script with the fake gcloud; returns (result, recorded gcloud argv or None)."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "gcloud").write_text(FAKE_GCLOUD)
  (bin_dir / "gcloud").chmod(0o755)
  calls = tmp_path / "gcloud_calls"
  base_env = {k: v for k, v in os.environ.items()
              if not k.startswith(("TPU_", "VLM_JAX_", "LOG_")) and k not in ("ASSUME_YES", "DRY_RUN")}
  base_env.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_GCLOUD_CALLS=str(calls),
                  TMPDIR=str(tmp_path))

  def run(script, *args, env=None):
    result = subprocess.run(["bash", str(LAUNCH / script), *args], env={**base_env, **(env or {})},
                            capture_output=True, text=True, timeout=30)
    recorded = calls.read_text().splitlines() if calls.exists() else None
    if calls.exists():
      calls.unlink()
    return result, recorded

  return run


def dry_run(launch, script, *args, env=None):
  """The printed commands, split as a shell would; fails if gcloud was executed."""
  result, recorded = launch(script, "--dry-run", *args, env=env)
  assert result.returncode == 0, result.stderr
  assert recorded is None and "FAKE GCLOUD" not in result.stderr
  return [shlex.split(line) for line in result.stdout.splitlines()]


def split_gcloud(words, verb):
  """(positional arguments, {flag: value}) of `gcloud compute tpus tpu-vm VERB ...`."""
  assert words[:5] == TPU_VM + [verb], words
  positional = [w for w in words[5:] if not w.startswith("--")]
  flags = dict((w[2:].split("=", 1) + [True])[:2] for w in words[5:] if w.startswith("--"))
  return positional, flags


def remote_command(words):
  """The shell command of a `tpu-vm ssh --worker=all` call."""
  positional, flags = split_gcloud(words, "ssh")
  assert positional == ["vlm-pod"]
  assert flags["worker"] == "all"
  assert (flags["zone"], flags["project"]) == ("us-east5-a", "my-project")
  return flags["command"]


def assert_installs_in_checkout_venv(steps):
  """The remote steps build vlm_jax/.venv, where train.sh activates it, and install the tpu extra."""
  cd = steps.index(["cd", "vlm_jax"])
  venv, install = steps[cd + 1:]
  assert venv[:4] == ["python3", "-m", "uv", "venv"] and venv[-1] == ".venv"
  assert install[:5] == ["python3", "-m", "uv", "pip", "install"] and install[-2:] == ["-e", ".[tpu]"]
  assert "--python=.venv/bin/python" in install


def run_remote(command, home):
  """Runs a remote command in `home` as the worker's shell would."""
  return subprocess.run(["bash", "-c", command], cwd=home, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("capacity", [[], ["--spot"], ["--reserved"]])
def test_create(launch, capacity):
  [words] = dry_run(launch, "create.sh", *POD, "--accelerator", "v5p-64", *capacity)
  positional, flags = split_gcloud(words, "create")
  assert positional == ["vlm-pod"]
  assert flags["accelerator-type"] == "v5p-64"
  assert flags["version"] == "v2-alpha-tpuv5"  # cloud.google.com/tpu/docs/runtimes, v5p row
  assert (flags["zone"], flags["project"]) == ("us-east5-a", "my-project")
  assert {"spot", "reserved"} & flags.keys() == {c[2:] for c in capacity}


def test_create_takes_explicit_version_and_env_defaults(launch):
  env = {"TPU_NAME": "vlm-pod", "TPU_ZONE": "us-east5-a", "TPU_ACCELERATOR": "v5p-64"}
  [words] = dry_run(launch, "create.sh", "--version=my-runtime", env=env)
  positional, flags = split_gcloud(words, "create")
  assert positional == ["vlm-pod"]
  assert (flags["accelerator-type"], flags["version"], flags["zone"]) == ("v5p-64", "my-runtime", "us-east5-a")
  assert "project" not in flags


def test_setup_copies_this_checkout_and_installs_on_all_workers(launch, tmp_path):
  archive_cmd, scp, cleanup, ssh = dry_run(launch, "setup.sh", *POD)
  archive = str(tmp_path / "vlm_jax-vlm-pod.tar.gz")
  assert archive_cmd[0] == "git" and archive_cmd[-1] == "HEAD" and f"--output={archive}" in archive_cmd
  positional, flags = split_gcloud(scp, "scp")
  assert positional[0] == archive
  tpu, remote_archive = positional[1].split(":")
  assert tpu == "vlm-pod" and flags["worker"] == "all"
  assert cleanup == ["rm", "-f", archive]

  steps = [shlex.split(step) for step in remote_command(ssh).split(" && ")]
  assert ["tar", "-xzf", remote_archive, "-C", "vlm_jax"] in steps
  assert_installs_in_checkout_venv(steps)

  # The printed archive command is runnable and packs the repository.
  subprocess.run(archive_cmd, check=True, timeout=30)
  listing = subprocess.run(["tar", "-tzf", archive], capture_output=True, text=True, check=True).stdout
  assert {"setup.py", "vlm_jax/__init__.py"} <= set(listing.split())


def test_setup_clones_a_repository(launch):
  [ssh] = dry_run(launch, "setup.sh", *POD, "--repo", "https://example.com/vlm_jax.git", "--branch", "v1")
  steps = [shlex.split(step) for step in remote_command(ssh).split(" && ")]
  assert ["git", "clone", "--depth=1", "--branch=v1", "https://example.com/vlm_jax.git", "vlm_jax"] in steps
  assert_installs_in_checkout_venv(steps)


def test_setup_replaces_a_folder_inside_home(launch):
  [ssh] = dry_run(launch, "setup.sh", *POD, "--repo", "https://example.com/vlm_jax.git",
                  "--remote-dir", "runs/../checkouts/vlm jax")
  steps = [shlex.split(step) for step in remote_command(ssh).split(" && ")]
  assert steps[0] == ["rm", "-rf", "runs/../checkouts/vlm jax"]
  assert steps[1][-1] == "runs/../checkouts/vlm jax"


@pytest.mark.parametrize("remote_dir, problem", [
    ("", "is empty"),
    ("/", "is not relative to the home directory"),
    ("/opt/vlm_jax", "is not relative to the home directory"),
    ("~/vlm_jax", "is not relative to the home directory"),
    ("~", "is the home directory itself"),
    ("~/", "is the home directory itself"),
    ("$HOME", "is the home directory itself"),
    (os.path.expanduser("~"), "is the home directory itself"),
    ("vlm_jax/..", "is the home directory itself"),
    ("..", "is outside the home directory"),
    ("vlm_jax/../../other", "is outside the home directory"),
])
@pytest.mark.parametrize("dry", [True, False])
def test_setup_refuses_a_remote_dir_it_must_not_delete(launch, remote_dir, problem, dry):
  result, recorded = launch("setup.sh", *POD, "--remote-dir", remote_dir,
                            *(["--dry-run"] if dry else []))
  assert result.returncode == 2
  [line] = result.stderr.splitlines()
  assert problem in line and "give a folder inside the home directory" in line
  assert recorded is None and not result.stdout


def test_setup_refuses_an_empty_remote_dir_variable(launch):
  result, recorded = launch("setup.sh", *POD, "--dry-run", env={"VLM_JAX_REMOTE_DIR": ""})
  assert result.returncode == 2 and "--remote-dir is empty" in result.stderr
  assert recorded is None and not result.stdout


def vlm_jax_words(ssh):
  """(the remote command, its words from `vlm-jax` on), checking it runs under nohup."""
  command = remote_command(ssh)
  words = shlex.split(command)
  start = words.index("vlm-jax")
  assert words[start - 1] == "nohup"
  return command, words[start:]


def run_in_background_on_a_worker(command, home, log_name, arguments):
  """On a worker: a fake vlm-jax in the checkout's venv gets exactly `arguments`, the ssh
  command returns while it still runs, and what it prints goes to logs/`log_name`."""
  venv_bin = home / "vlm_jax" / ".venv" / "bin"
  venv_bin.mkdir(parents=True)
  (venv_bin / "activate").write_text(f'export PATH="{venv_bin}:$PATH"\n')
  (venv_bin / "vlm-jax").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\nsleep 2\necho done\n')
  (venv_bin / "vlm-jax").chmod(0o755)
  result = run_remote(command, home)
  assert result.returncode == 0, result.stderr
  log = home / "vlm_jax" / "logs" / log_name
  assert not log.exists() or "done" not in log.read_text()
  deadline = time.monotonic() + 10
  while not (log.exists() and log.read_text().endswith("done\n")) and time.monotonic() < deadline:
    time.sleep(0.05)
  assert log.read_text().splitlines() == arguments + ["done"]


def test_train_starts_in_background_with_a_log_per_worker(launch, tmp_path):
  config = "configs/it's a config.py"
  [ssh] = dry_run(launch, "train.sh", *POD, "--config", config, "--workdir", "gs://bucket/run 1",
                  "--", "--set", "seed=1")
  command, words = vlm_jax_words(ssh)
  assert words[:8] == [
      "vlm-jax", "train", "--config", config, "--workdir", "gs://bucket/run 1", "--set", "seed=1"]
  run_in_background_on_a_worker(command, tmp_path / "home", f"train_{socket.gethostname()}.log",
                                words[1:8])


def test_eval_runs_on_every_worker_of_a_v5p_64_with_a_log_each(launch, tmp_path):
  # A v5p-64 is 8 workers: one ssh --worker=all starts the same command on each, and
  # every process takes its share of the questions (vlm_jax.evaluate.shares).
  config = "configs/eval/llava_1_5.py:root=data/eval,benchmarks=gqa+textvqa"
  checkpoints = "gs://bucket/run 1@500,gs://bucket/run2"
  [ssh] = dry_run(launch, "eval.sh", *POD, "--config", config, "--checkpoints", checkpoints,
                  "--workdir", "runs/eval", "--", "--budgets", "1,4", "--set", "dtype=bfloat16")
  command, words = vlm_jax_words(ssh)
  assert words[:12] == [
      "vlm-jax", "eval", "--config", config, "--checkpoints", checkpoints, "--workdir",
      "runs/eval", "--budgets", "1,4", "--set", "dtype=bfloat16"]
  run_in_background_on_a_worker(command, tmp_path / "home", f"eval_{socket.gethostname()}.log",
                                words[1:12])


def test_eval_needs_a_workdir_on_worker_0s_disk(launch):
  result, recorded = launch("eval.sh", *POD, "--config", "c.py", "--checkpoints", "gs://b/r",
                            "--workdir", "gs://b/eval", "--dry-run")
  assert result.returncode == 2 and "a folder on its disk" in result.stderr
  assert recorded is None and not result.stdout


def test_train_needs_a_gcs_workdir(launch):
  result, recorded = launch("train.sh", *POD, "--config", "c.py", "--workdir", "/tmp/run", "--dry-run")
  assert result.returncode != 0 and "gs://" in result.stderr
  assert recorded is None and not result.stdout


@pytest.mark.parametrize("worker, follow, kind", [("all", False, "train"), ("3", True, "train"),
                                                 ("all", False, "eval")])
def test_logs(launch, tmp_path, worker, follow, kind):
  args = ["--worker", worker, "--lines", "2"] + (["--follow"] if follow else [])
  [words] = dry_run(launch, "logs.sh", *POD, *args, *(["--eval"] if kind == "eval" else []))
  positional, flags = split_gcloud(words, "ssh")
  assert positional == ["vlm-pod"] and flags["worker"] == worker
  command = flags["command"]
  assert ("-F" in shlex.split(command)) == follow
  if follow:
    return
  log_dir = tmp_path / "vlm_jax" / "logs"
  log_dir.mkdir(parents=True)
  (log_dir / f"{kind}_{socket.gethostname()}.log").write_text("step 1\nstep 2\nstep 3\n")
  result = run_remote(command, tmp_path)
  host = socket.gethostname()
  assert result.stdout.splitlines() == [f"[{host}] step 2", f"[{host}] step 3"]


def test_logs_rejects_a_bad_worker(launch):
  result, _ = launch("logs.sh", *POD, "--worker", "first", "--dry-run")
  assert result.returncode != 0 and "--worker" in result.stderr


@pytest.mark.parametrize("yes", [False, True])
def test_teardown(launch, yes):
  [words] = dry_run(launch, "teardown.sh", *POD, *(["--yes"] if yes else []))
  positional, flags = split_gcloud(words, "delete")
  assert positional == ["vlm-pod"]
  assert (flags["zone"], flags["project"]) == ("us-east5-a", "my-project")
  assert ("quiet" in flags) == yes


@pytest.mark.parametrize("script, args, missing, variable", [
    ("create.sh", ["--name", "p", "--zone", "z"], "--accelerator", "TPU_ACCELERATOR"),
    ("create.sh", ["--name", "p", "--accelerator", "v5p-64"], "--zone", "TPU_ZONE"),
    ("setup.sh", ["--zone", "z"], "--name", "TPU_NAME"),
    ("train.sh", ["--name", "p", "--zone", "z", "--workdir", "gs://b/r"], "--config", "VLM_JAX_CONFIG"),
    ("train.sh", ["--name", "p", "--zone", "z", "--config", "c.py"], "--workdir", "VLM_JAX_WORKDIR"),
    ("eval.sh", ["--name", "p", "--zone", "z", "--config", "c.py", "--workdir", "w"],
     "--checkpoints", "VLM_JAX_CHECKPOINTS"),
    ("logs.sh", ["--name", "p"], "--zone", "TPU_ZONE"),
    ("teardown.sh", ["--zone", "z"], "--name", "TPU_NAME"),
])
def test_missing_required_flag_is_named(launch, script, args, missing, variable):
  result, recorded = launch(script, *args, "--dry-run")
  assert result.returncode != 0
  assert f"missing {missing} (or set {variable})" in result.stderr
  assert recorded is None and not result.stdout


@pytest.mark.parametrize("args, message", [
    (["--config", "c.py"], "unknown flag --config"),
    (["--spot", "--reserved"], "exclude each other"),
    (["--accelerator", "x9-8"], "pass --version"),
])
def test_create_rejects_bad_flags(launch, args, message):
  result, recorded = launch("create.sh", "--name", "p", "--zone", "z", "--accelerator", "v5p-64", *args,
                            "--dry-run")
  assert result.returncode != 0 and message in result.stderr
  assert recorded is None


@pytest.mark.parametrize("script, args", [
    ("create.sh", ["--accelerator", "v5p-64", "--spot"]),
    ("teardown.sh", ["--yes"]),
])
def test_real_run_executes_what_dry_run_prints(launch, script, args):
  [printed] = dry_run(launch, script, *POD, *args)
  result, recorded = launch(script, *POD, *args, env={"FAKE_GCLOUD_RC": "0"})
  assert result.returncode == 0, result.stderr
  assert ["gcloud"] + recorded == printed


def test_gcloud_failure_stops_the_script(launch):
  result, recorded = launch("teardown.sh", *POD, "--yes")
  assert result.returncode == 97 and "FAKE GCLOUD CALLED" in result.stderr
  assert recorded is not None
