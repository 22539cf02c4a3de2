"""Errors in what the user asked for, which `vlm-jax` prints as one line (exit status 2).

Raise UserError (or a subclass) where a name, value, file or checkpoint the user gave
is checked, with a message that names the accepted values. Any other exception is a
bug and keeps its traceback.
"""
import contextlib


class UserError(Exception):
  """Bad input from the user; the message says what is accepted."""

  def __str__(self):
    # One message, unquoted (KeyError's str() would quote it).
    return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class UnknownNameError(UserError, KeyError):
  """A name that is not among the known ones; a KeyError to code that looks names up."""


class BadValueError(UserError, ValueError):
  """A value of the wrong type or outside the accepted ones."""


@contextlib.contextmanager
def user_input(*error_types):
  """Treats `error_types` (default ValueError and KeyError) raised inside as UserError.

  Only for code that checks what the user gave (config loading, validation, reading
  the user's files), where these errors describe the input rather than a bug.
  """
  error_types = error_types or (ValueError, KeyError)
  try:
    yield
  except UserError:
    raise
  except error_types as error:
    raise UserError(message(error)) from error


def message(error):
  """The error as one line, without KeyError's quotes or OSError's errno."""
  if isinstance(error, OSError) and error.filename is not None and error.strerror:
    text = f"{error.strerror}: {error.filename}"
  elif isinstance(error, KeyError) and len(error.args) == 1:
    text = str(error.args[0])
  else:
    text = str(error)
  return " ".join(line.strip() for line in text.splitlines() if line.strip())
