"""Patchers by name: the built-in ones (imported here, which registers them) and any other class
decorated with ``bytelm.patching.base.register_patcher``."""
import difflib
from typing import Any

from bytelm.errors import UserError
# imported for their registration (each module's classes use @register_patcher)
from bytelm.patching import babylon, entropy, fixed, space  # noqa: F401
from bytelm.patching.base import _PATCHERS, Patcher


def list_patchers() -> list[str]:
    """Names accepted by ``get_patcher``."""
    return sorted(_PATCHERS)


def patcher_class(name: str) -> type[Patcher]:
    """The class registered as ``name`` (its ``config_class`` lists the options)."""
    known = list_patchers()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(known)}"
        raise UserError(f"unknown patcher {name!r}{hint}")
    return _PATCHERS[name]


def get_patcher(name: str, **kwargs: Any) -> Patcher:
    """The patcher registered as ``name``, built with config fields (and, for entropy-model,
    ``model=``) as keyword arguments; an unknown name or option is a UserError."""
    return patcher_class(name)(**kwargs)
