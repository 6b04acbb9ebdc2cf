"""Where downloaded data and trained weights live: ``$NNCAS_CACHE``, else ``~/.cache/nncas``."""
import os
from pathlib import Path

CACHE_ENV = "NNCAS_CACHE"


def cache_dir(*parts):
    """Return (and create) ``<cache>/<parts...>``; the cache is never inside the repository."""
    root = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "nncas"
    path = Path(root).expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
