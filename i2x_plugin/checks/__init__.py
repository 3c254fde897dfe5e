"""The checks of a claim (validation.md §2–3): an explanation and its final model in, test results out.

:mod:`.faithfulness`: does the final model use what a claim names (deletion tests against matched random
sets)? :mod:`.stability`: would another fit of the prototypes say the same (re-fits, overlaps, recurrence)?
:mod:`.reliance`: what does the final model rely on, and since when (held-out deletions)? :mod:`.pair_reliance`:
its pair relations (margin reliance, the confusers of the most confused pairs). :mod:`.shortcut`: does a prototype
look like a shortcut (the report's flag), and how does it sit on a known marker? :mod:`.run` is what a user calls
(:func:`~.run.run_faithfulness`, :func:`~.run.run_stability`, :func:`~.run.run_reliance`). A check only
computes: it returns results (typed in :mod:`i2x_plugin.method.evidence`) or a new explanation carrying
them; the report shows them and the graph stores them. (The null test of validation.md §1 is part of how
the method makes a claim: :func:`i2x_plugin.method.claims.null_claim_counts`.)
"""

from .run import run_faithfulness, run_reliance, run_stability

__all__ = ["run_faithfulness", "run_reliance", "run_stability"]
