"""The model: pipelines and their stages, and what a run produces.

Owns the pipeline (``Source``/``Filter``/``Sink``, stage state and shard
protocols, index selection), outcomes and their columns, the outcome table,
results, errors and the per-item data every outcome carries (captured output,
measures), and how values are pickled with errors that name the culprit.
Imports nothing else of curator: every other sub-package builds on it.
"""
