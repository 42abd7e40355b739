"""Synthetic event data: a DVS pixel emulator (:mod:`~dvsstream.synth.emulator`), stick
figures performing the eleven DVS128 Gesture classes (:mod:`~dvsstream.synth.gestures`),
and the synthetic gesture set written as HDF5 recordings and in tonic's layout
(:mod:`~dvsstream.synth.dataset`). No torch, no Qt."""
