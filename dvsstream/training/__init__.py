"""Training and evaluation: the papers' recipe (:mod:`~dvsstream.training.train`),
accuracy, energy and reports on a dataset (:mod:`~dvsstream.training.evaluate`) and the
report figures (:mod:`~dvsstream.training.plots`)."""
