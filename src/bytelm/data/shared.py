"""Where the project's shared corpora are: ``$BYTELM_SHARED_DATA``, else ``shared/data`` beside
the repository (``../shared/data`` from its root). The CLI's default haystacks and Kaşgarlı
corpora, the benchmarks and the tests all read this one setting."""
import os
from pathlib import Path

ENV = "BYTELM_SHARED_DATA"


def shared_data_dir() -> Path:
    """The shared data folder: ``$BYTELM_SHARED_DATA``, else ../shared/data beside the repository.

    Returns:
        the folder (not checked to exist).
    """
    env = os.environ.get(ENV)
    return Path(env) if env else Path(__file__).resolve().parents[3].parent / "shared" / "data"
