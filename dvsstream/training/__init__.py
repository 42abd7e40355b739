"""Training and evaluation: the papers' recipe (:mod:`~dvsstream.training.trainer`, its
configuration in :mod:`~dvsstream.training.config`, optimiser and schedule in
:mod:`~dvsstream.training.schedule`, one step's pieces in :mod:`~dvsstream.training.steps`
and its memory in :mod:`~dvsstream.training.memory`), training on a dataset folder
(:mod:`~dvsstream.training.train`), several processes (:mod:`~dvsstream.training.distributed`),
accuracy, energy and reports on a dataset (:mod:`~dvsstream.training.evaluate`) and the
report figures (:mod:`~dvsstream.training.plots`)."""
