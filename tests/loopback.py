"""Local processes that talk over loopback, for the multi-process tests."""
import contextlib
import json
import socket


def free_port():
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]


@contextlib.contextmanager
def killed_on_exit(procs):
  """Yields `procs`; any still running on the way out is killed."""
  try:
    yield procs
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
        proc.communicate()


def json_outputs(procs, timeout):
  """Waits for every process: each must exit 0 and print JSON on its last line."""
  outputs = []
  for proc in procs:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, stderr[-3000:]
    outputs.append(json.loads(stdout.strip().splitlines()[-1]))
  return outputs
