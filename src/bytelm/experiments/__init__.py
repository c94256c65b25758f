"""Experiments: each trains models and scores them, and writes a result JSON.

- ``kasgarli``: the English-vs-Turkish (Kasgarli) test, one model and budget per language of a
  parallel corpus (``bytelm kasgarli``).
- ``bpe_baseline``: the same Transformer over byte-level BPE tokens within a byte model's
  training FLOPs, its weights chosen on validation.
- ``recall``: multi-query associative recall, trained and scored (``bytelm recall``).

``bytelm.eval`` only scores trained models; nothing below this package imports it.
"""
