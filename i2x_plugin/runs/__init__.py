"""A run of ``i2x run``, as data: a recipe in, the run's data, model and saved directory out.

:mod:`.run_config` is the recipe (:class:`~.run_config.RunConfig`: data set, model, training, I2X settings,
store), :mod:`.run_data` loads its split and probe set, :mod:`.saved_run` reads a run directory back (its
explanation, final model and probe set) for the checks and the fine-tuning study to re-use.
"""
