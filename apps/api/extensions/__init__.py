"""Features that later lessons add to the API: each is a module here with ``init_app(app)``.

The application factory initialises every module of this package, in name order. A
lesson that adds a feature to the API (the prediction log of notebook 07, for example)
writes a new module here instead of editing the factory, so the API built in notebook
02 keeps working unchanged, and each feature stays in the lesson that teaches it.
"""

import importlib
import pkgutil
from types import ModuleType


def discover() -> list[ModuleType]:
    """Import every extension module, in name order; an import error is not hidden."""
    names = sorted(module.name for module in pkgutil.iter_modules(__path__))
    return [importlib.import_module(f"{__name__}.{name}") for name in names]
