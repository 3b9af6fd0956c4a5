"""The clinical inputs the images cannot give (``--clinical FILE`` or a batch CSV row).

They are inputs, read and validated with the images in the load stage, and the classification
decides from them; so they live below both (:mod:`netlm_imaging.clinical.inputs` the fields and
the file, :mod:`~netlm_imaging.clinical.cells` one value each, :mod:`~netlm_imaging.clinical.text`
the spellings of a free-text cell).
"""
