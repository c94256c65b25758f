"""The package version (one place; ``bytelm.__version__`` and saved config files read it)."""
__version__ = "0.1.0"
