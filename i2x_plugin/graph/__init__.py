"""The explanation graph: a :class:`~i2x_plugin.method.structure.StructuredExplanation` in, answers out.

:mod:`.ingest` writes an explanation's rows (:mod:`i2x_plugin.graph_schema`) into a graph store
(:mod:`i2x_plugin.store`, Bolt) with batched UNWIND writes; :mod:`.questions` asks the "why" catalog's
Cypher; :mod:`.answers` turns answers into sentences with their evidence; :mod:`.view` draws a run's graph
for a notebook or a page.
"""
