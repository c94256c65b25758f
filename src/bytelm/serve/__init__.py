"""``bytelm serve``: a local web playground over loaded runs (needs the ``serve`` extra).

    from bytelm.serve import load_runs, create_app, ServeConfig
    app = create_app(load_runs(["runs/en"], "cpu"), ServeConfig())
"""
from bytelm.serve.config import ServeConfig
from bytelm.serve.runs import LoadedRun, load_runs


def create_app(runs, config=None):
    """The ASGI app (``bytelm.serve.app.create_app``); imports FastAPI only when called."""
    from bytelm.serve.app import create_app as _create
    return _create(runs, config)


__all__ = ["LoadedRun", "ServeConfig", "create_app", "load_runs"]
