"""Run-directory and checkpoint locks; they live in the low-level ``bytelm.locks``."""
from bytelm.locks import RunLock, swap_lock  # noqa: F401
