"""Synthetic event data: a DVS pixel emulator (:mod:`~dvsstream.synth.emulator`), stick
figures performing the eleven DVS128 Gesture classes (:mod:`~dvsstream.synth.gestures`),
the synthetic gesture set written as HDF5 recordings and in tonic's layout
(:mod:`~dvsstream.synth.dataset`), and unlabelled recordings of varied scenes (shapes,
textures, motions, hands, camera motion) for pre-training (:mod:`~dvsstream.synth.scenes`,
drawn by :mod:`~dvsstream.synth.sprites`). No torch, no Qt."""

#: the summary ``dvsstream synth`` writes into its output folder; its presence marks the
#: folder as a synthetic set (``train`` / ``eval --root`` find the set's layouts under it)
SUMMARY_NAME = "synth_summary.json"
