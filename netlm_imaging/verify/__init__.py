"""Verification and longitudinal use: check reported numbers, compare segmentations, follow a patient.

Modules (import them directly; nothing heavy is imported here):

- :mod:`netlm_imaging.verify.check` -- ``check_reported(csv_path, ...)``, ``check_sr(sr_path, study, ...)``
- :mod:`netlm_imaging.verify.check_report` -- ``check_report_json(report_path, study, ...)``
- :mod:`netlm_imaging.verify.reported_cells` -- how a reported table's columns and cells are read
- :mod:`netlm_imaging.verify.segcompare` -- ``compare_segmentations``, ``compare_segmentation_files``
- :mod:`netlm_imaging.verify.longitudinal` -- ``compare_studies``, ``compare_study_inputs``, RECIST 1.1
- :mod:`netlm_imaging.verify.new_lesions` -- which unmatched follow-up lesions count as new (RECIST 1.1)
- :mod:`netlm_imaging.verify.registration` -- liver-mask alignment, resampling by physical position
"""

__all__ = ["check", "check_report", "longitudinal", "new_lesions", "registration", "reported_cells", "segcompare"]
