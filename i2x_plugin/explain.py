"""The I2X facade: ``I2X(model, layer, adapter, config).explain(checkpoints, dataset)``.

:class:`I2X` is the method (:class:`~i2x_plugin.method.explain.Explainer`: checkpoints → prototypes → the
streaming sweep → β → claims → :class:`~i2x_plugin.method.structure.StructuredExplanation`) followed by the
checks its config asks for: the faithfulness test (``I2XConfig.faithfulness``) on the final checkpoint. It
sits above both stages, so neither knows the other (docs/architecture.md).
"""

from __future__ import annotations

from .checks.run import with_faithfulness
from .method.explain import Explainer, as_image_dataset, restored_model
from .method.probe import ProbeSet
from .method.structure import StructuredExplanation
from .training.checkpoints import CheckpointInfo, LoadFunc

__all__ = ["I2X", "as_image_dataset", "restored_model"]


class I2X(Explainer):
    __doc__ = Explainer.__doc__

    def _checked(self, explanation: StructuredExplanation, probe: ProbeSet, final: CheckpointInfo,
                 checkpoints_load_func: LoadFunc) -> StructuredExplanation:
        """The faithfulness test on the final checkpoint (unless ``config.faithfulness`` is off)."""
        if not self.config.faithfulness:
            return explanation
        with self._stage("faithfulness"), restored_model(self.model):
            self.model.to(self.device)
            checkpoints_load_func(self.model, final.path)
            self.model.eval()
            return with_faithfulness(explanation, self.model, probe.images, self.device)
