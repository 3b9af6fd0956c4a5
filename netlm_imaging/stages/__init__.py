"""The stages of one analysis, each a module that calls only downward.

:func:`netlm_imaging.api.analyze_with_context` makes one call per stage:

1. :mod:`.discover` -- a study folder or explicit paths to :class:`~.discover.StudyInputs`;
2. :mod:`.load` -- the image, the masks on its grid, the PET SUV image, the MR series,
   the clinical inputs and the rules (:class:`~.load.LoadedStudy`);
3. :mod:`.measure` -- every quantity, from the loaded volumes only (:class:`~.measure.Measurements`);
4. :mod:`.classify` -- every decision, from the measurements (:class:`~.classify.Decisions`);
5. :mod:`.report` -- the immutable :class:`~netlm_imaging.report.model.StudyReport`, built in one call.

Writing the outputs is :func:`netlm_imaging.report.outputs.write_outputs`, called by the entry points.
"""
