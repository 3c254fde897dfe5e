"""The application: a command line in, a run directory, a report and a graph out.

:mod:`.run` is ``i2x run`` end to end (train or read checkpoints → explain → check → report and graph, the
store started in the :mod:`.background`); :mod:`.write_back` puts a re-tested explanation back into a saved
run; :mod:`.cli` parses the ``i2x`` command (graph commands in :mod:`.cli_graph`, ``i2x improve`` in
:mod:`.cli_improve`). The top stage: nothing imports it but the ``i2x_plugin.cli`` entry point.
"""
