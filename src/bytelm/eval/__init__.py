"""Evaluation: bits per byte, and later needle/recall/cross-language suites."""
