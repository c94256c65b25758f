"""Hugging Face ``transformers`` integration: export a bytelm checkpoint as a directory that
``AutoModelForCausalLM`` / ``AutoTokenizer`` load with ``trust_remote_code=True``.

The exported directory's Python files are three-line shims importing the classes below, so
it needs bytelm importable (``pip install bytelm[hf]``): bytelm's families span models/, nn/,
ops/ and patching/, and a self-contained copy of all of that per export would drift from the
code that trained the weights. See docs/ecosystem.md.

Nothing here imports ``transformers`` at package import time; ``require`` turns a missing
optional package into a one-line UserError.
"""
import importlib

from bytelm.errors import UserError


def require(package: str, extra: str = "hf"):
    """Imports ``package`` or raises a UserError naming the extra that installs it."""
    try:
        return importlib.import_module(package)
    except ImportError:
        raise UserError(f"{package} is not installed: pip install 'bytelm[{extra}]'") from None
