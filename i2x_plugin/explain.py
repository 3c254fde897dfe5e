"""The I2X facade: ``I2X(model, layer, adapter, config).explain(checkpoints, dataset)``.

:class:`I2X` is the method (:class:`~i2x_plugin.method.explain.Explainer`: checkpoints → prototypes → the
streaming sweep → β → claims → :class:`~i2x_plugin.method.structure.StructuredExplanation`) followed by the
checks its config asks for: the faithfulness test (``I2XConfig.faithfulness``) on the final checkpoint. It
sits above both stages, so neither knows the other (docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterable

import numpy as np

from .checks.faithfulness import deletion_tests
from .method.explain import Explainer, as_image_dataset, restored_model
from .method.probe import ProbeLike, ProbeSet
from .method.structure import StructuredExplanation
from .training.checkpoints import CheckpointsType, LoadFunc, default_load_func

__all__ = ["I2X", "as_image_dataset", "restored_model"]


class I2X(Explainer):
    __doc__ = Explainer.__doc__

    def explain(
        self,
        checkpoints: CheckpointsType,
        dataset: ProbeLike,
        checkpoints_load_func: LoadFunc = default_load_func,
        class_names: Iterable[str] | None = None,
        sample_ids: np.ndarray | None = None,
        run_id: str | None = None,
        model_name: str | None = None,
        progress: bool = False,
    ) -> StructuredExplanation | None:
        """Run steps 2–8 over ``checkpoints`` (directory, list or iterable of paths) on the probe ``dataset``,
        then the faithfulness test on the final checkpoint (unless ``config.faithfulness`` is off).

        ``dataset``: an :class:`~i2x_plugin.training.data.ImageDataset`, ``(images, labels)`` tensors, a
        map-style ``Dataset`` of ``(image, label)`` items or a ``DataLoader`` over one (see
        :mod:`i2x_plugin.method.probe`). ``class_names`` (default: the dataset's) needs one name per model
        class; ``sample_ids`` (default: positions) one unique integer id per probe sample. The model is given
        back as it was found. Under ``torchrun`` call it on every rank: rank 0 returns the explanation, the
        others ``None``.
        """
        explanation = super().explain(checkpoints, dataset, checkpoints_load_func, class_names, sample_ids,
                                      run_id, model_name, progress)
        if explanation is None or not self.config.faithfulness:
            return explanation
        with self._stage("faithfulness"), restored_model(self.model):
            self.model.to(self.device)
            checkpoints_load_func(self.model, Path(explanation.checkpoints[-1].path))
            self.model.eval()
            images = ProbeSet.from_data(dataset).images
            results, skipped = deletion_tests(explanation, self.model, images, self.device)
        return dataclasses.replace(explanation, faithfulness_results=results,
                                   skipped=explanation.skipped + [f"faithfulness: {line}" for line in skipped])
