"""Small name -> object registries (models, compressors, scorers, ...)."""


class Registry:
  """Maps names to objects; `register` is a decorator."""

  def __init__(self, kind):
    self.kind = kind
    self._items = {}

  def register(self, name):
    def decorator(obj):
      if name in self._items:
        raise ValueError(f"{self.kind} {name!r} is registered twice")
      self._items[name] = obj
      return obj
    return decorator

  def get(self, name):
    if name not in self._items:
      raise KeyError(
          f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._items))}")
    return self._items[name]

  def names(self):
    return sorted(self._items)
