"""The I2X method, steps 2–8: checkpoints and a probe set in, a :class:`~.structure.StructuredExplanation` out.

Takes the training checkpoints (:mod:`i2x_plugin.training.checkpoints`), the probe data (:mod:`.probe`)
and a saliency adapter (:mod:`i2x_plugin.adapters`). In pipeline order: :mod:`.prototypes` (final-model
features → PCA → K-Means), :mod:`.progress` (the streaming sweep: intensities, confidences, Δ, groups),
:mod:`.ridge` (β), :mod:`.significance` and :mod:`.claims` (the claims, tested against their null, typed in
:mod:`.claim_types`), :mod:`.structure` (the explanation, saved as JSON + NPZ). :mod:`.explain` runs them
in order (:class:`~.explain.Explainer`); :mod:`.config` holds their settings, :mod:`.distributed` the sharding
over torchrun ranks, :mod:`.evidence` the check results an explanation carries. Nothing here imports a check,
the graph or the report.
"""
