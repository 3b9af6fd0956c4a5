"""DICOM SR output: the content of netlm's TID 1500 Measurement Report (Comprehensive 3D SR), and its entry points.

Content (DICOM PS3.16 TID 1500 "Measurement Report")
----------------------------------------------------
The report references the measured image series (the Current Requested
Procedure Evidence Sequence lists every source image; the optional TID 1600
Image Library is left out because highdicom builds it at about 0.1 s per
image) and holds one measurement group per finding:

=====================  ==========================  ===========================================
tracking identifier    finding type                measurements (concept name, UCUM unit)
=====================  ==========================  ===========================================
``Total liver``        SCT 10200004 Liver          SCT 118565006 Volume (``ml``)
``Intrahepatic         SCT 108369006 Neoplasm,     Volume (``ml``); 99NETLM INVOLVEMENT
tumour``               site Liver                  "Hepatic tumour involvement" (``%``)
``Non-tumorous         SCT 10200004 Liver          Volume (``ml``) = total liver - tumour
liver``
``Lesion <id>          SCT 108369006 Neoplasm      Volume (``ml``); SCT 103339001 Long Axis,
(<location>)``         (site Liver if intra-       SCT 103340004 Short Axis, SCT 81827009
                       hepatic)                    Diameter derived SCT 56851009 Maximum
                                                   (3D, ``mm``); with PET: DCM 126401 SUVbw
                                                   derived Maximum / SCT 373098007 Mean /
                                                   DCM 126031 Peak Value Within ROI
                                                   (``{SUVbw}g/ml``)
``Hepatic / Whole-body  SCT 108369006 Neoplasm      99NETLM SRETV (``ml``), 99NETLM TLSRE
somatostatin receptor-                             (``g`` = mL x SUVbw g/mL, as DCM's TLG);
expressing tumour``                                lesions with PET carry their own too
(PET only)
=====================  ==========================  ===========================================

The PET numbers are those of ``report.json`` (``lesions[].suv_max`` /
``suv_mean`` / ``suv_peak`` / ``sretv_ml`` / ``tlsre``, ``pet.sretv_ml`` /
``pet.tlsre`` (hepatic) and ``pet.whole_body_sretv_ml`` / ``pet.whole_body_tlsre``).

No standard code exists for the share of the liver occupied by tumour (nor
for SRETV / TLSRE), so they use the private coding scheme ``99NETLM``
(identified in the SR's Coding Scheme Identification Sequence).

Segments: viewers (3D Slicer QuantitativeReporting, OHIF) pair a measurement
group with a segment through its TID 1411 ReferencedSegment. With
``derived_seg`` (the SEG of :func:`netlm_imaging.report.dicom_seg_out.write_seg`,
which ``--sr`` always writes) the total-liver group and every lesion group
reference the segment of that SEG they were measured on. Without it, a group
references an input SEG segment only when that segment is exactly the
measured region (same voxel count and, for lesions, the same name); every
other group is a TID 1501 group without a region.

Identity: see :mod:`netlm_imaging.report.identity`. Without
``include_identifiers`` the SR is de-identified (PS3.15 Basic Profile, Retain
UIDs Option); with it (the copy pushed back to the PACS) it keeps the source
images' Patient and Study modules. Its UIDs are derived from the measured
content, so a re-run gives the same SOP Instance UID.

Modules
-------
One concept each; this module names the document and gives its public names.

- :mod:`.sr_template`: the template's codes, tracking identifiers and units,
  the one table the writer and the reader both use (what is written is what is read);
- :mod:`.sr_groups`: the measurement groups of a report (per lesion, the liver,
  the tumour burden, PET), the per-lesion measurements from
  :mod:`netlm_imaging.report.lesion_columns`;
- :mod:`.sr_segment_refs`: which SEG segment each group references;
- :mod:`.sr_write`: :func:`write_sr`, encoding directly (:mod:`._sr_writer`) or
  with highdicom (:mod:`.sr_highdicom`);
- :mod:`.sr_read`: :func:`read_sr_measurements`, reading an SR back.
"""

from __future__ import annotations

from .sr_read import read_sr_measurements
from .sr_segment_refs import derived_segment_references
from .sr_template import INVOLVEMENT_CODE, SRETV_CODE, TLSRE_CODE
from .sr_write import write_sr

__all__ = [
    "INVOLVEMENT_CODE",
    "SRETV_CODE",
    "TLSRE_CODE",
    "derived_segment_references",
    "read_sr_measurements",
    "write_sr",
]
