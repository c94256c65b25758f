"""Command-line interface (``bytelm``); the only place that prints."""
