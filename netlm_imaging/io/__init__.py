"""Readers, one module per format; all return :class:`~netlm_imaging.volume.Volume` in LPS."""
