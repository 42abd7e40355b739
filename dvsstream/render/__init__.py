"""Clips for talks and papers (MP4 / GIF), drawn without Qt: the events with the
attention over them, the top class and probability bars (:mod:`~dvsstream.render.clip`)."""
