"""Identity of the DICOM objects the tool writes (see README "Identity of outputs").

Two kinds of copies exist:

* **copies going back to the source PACS** (``netlm pacs --push``, ``netlm
  listen --dest``): the SR / SEG keep the Patient and Study modules of the
  source images (highdicom copies them), so the PACS files them under the
  patient and study they came from;
* **research copies** (SR / SEG written to disk without
  ``--include-identifiers``): de-identified by :func:`deidentify`, the DICOM
  PS3.15 Basic Application Level Confidentiality Profile with the Retain UIDs
  Option. Person names, IDs, dates and addresses are replaced by dicognito
  (a maintained implementation; consistent within a study because it is
  seeded with the Study Instance UID), and the attributes the profile removes
  that dicognito keeps (free-text descriptions, physician identification
  sequences, patient age/size/weight, ...) are removed here.

The SEG / SR writers copy into their objects only these modules, the
acquisition equipment and their own dates, so only those attributes are
de-identified: with dicognito on a small pydicom dataset, or, when none of them
needs one of dicognito's made-up values, without pydicom by
:func:`netlm_imaging.report._source_header.identity_elements` (the same result;
tests/test_output_identity.py and tests/test_seg_writer.py compare it with
dicognito on the whole object).

UIDs of the tool's own objects are derived from their inputs
(:func:`result_uid`), so a re-run writes the same SOP Instance UIDs and a PACS
that already holds them changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

__all__ = [
    "BASIC_PROFILE_EMPTIED",
    "BASIC_PROFILE_REMOVED",
    "PATIENT_STUDY_KEYWORDS",
    "PATIENT_STUDY_TAGS",
    "copy_patient_study",
    "deidentification_elements",
    "deidentify",
    "result_uid",
]

#: Basic Profile action X (remove) for attributes that dicognito leaves in place.
BASIC_PROFILE_REMOVED = (
    "StudyDescription",
    "ReferringPhysicianIdentificationSequence",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "PerformingPhysicianIdentificationSequence",
    "PhysiciansReadingStudyIdentificationSequence",
    "NameOfPhysiciansReadingStudy",
    "OperatorIdentificationSequence",
    "RequestingPhysician",
    "RequestAttributesSequence",
    "PerformedProcedureStepDescription",
    "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence",
    "AdditionalPatientHistory",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "PatientComments",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "IssuerOfPatientID",
    "EthnicGroup",
    "MedicalAlerts",
    "Allergies",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "ImageComments",
    "InterpretationText",
    "ReasonForStudy",
    "RequestedProcedureDescription",
)
#: Basic Profile action Z (Type 2: present but empty).
BASIC_PROFILE_EMPTIED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
#: Root attributes of the Patient, Clinical Trial Subject, General Study, Patient Study and
#: Clinical Trial Study modules of the CT, MR and PET image IODs (single-frame and Enhanced):
#: what highdicom copies from the source image into a SEG / SR it derives
#: (``SOPClass.copy_patient_and_study_information``); tests/test_seg_writer.py checks
#: this list against highdicom's tables of the standard (and the tags against pydicom's dictionary).
PATIENT_STUDY_TAGS: dict[str, int] = {
    "AccessionNumber": 0x00080050,
    "AdditionalPatientHistory": 0x001021B0,
    "AdmissionID": 0x00380010,
    "AdmittingDiagnosesCodeSequence": 0x00081084,
    "AdmittingDiagnosesDescription": 0x00081080,
    "Allergies": 0x00102110,
    "BreedRegistrationSequence": 0x00102294,
    "ClinicalTrialProtocolEthicsCommitteeApprovalNumber": 0x00120082,
    "ClinicalTrialProtocolEthicsCommitteeName": 0x00120081,
    "ClinicalTrialProtocolID": 0x00120020,
    "ClinicalTrialProtocolName": 0x00120021,
    "ClinicalTrialSiteID": 0x00120030,
    "ClinicalTrialSiteName": 0x00120031,
    "ClinicalTrialSponsorName": 0x00120010,
    "ClinicalTrialSubjectID": 0x00120040,
    "ClinicalTrialSubjectReadingID": 0x00120042,
    "ClinicalTrialTimePointDescription": 0x00120051,
    "ClinicalTrialTimePointID": 0x00120050,
    "ClinicalTrialTimePointTypeCodeSequence": 0x00120054,
    "ConsentForClinicalTrialUseSequence": 0x00120083,
    "ConsultingPhysicianIdentificationSequence": 0x0008009D,
    "ConsultingPhysicianName": 0x0008009C,
    "DeidentificationMethod": 0x00120063,
    "DeidentificationMethodCodeSequence": 0x00120064,
    "EthnicGroupCodeSequence": 0x00102161,
    "GeneticModificationsSequence": 0x00100221,
    "GroupOfPatientsIdentificationSequence": 0x00100027,
    "IssuerOfAccessionNumberSequence": 0x00080051,
    "IssuerOfAdmissionIDSequence": 0x00380014,
    "IssuerOfClinicalTrialProtocolID": 0x00120022,
    "IssuerOfClinicalTrialSiteID": 0x00120032,
    "IssuerOfClinicalTrialSubjectID": 0x00120041,
    "IssuerOfClinicalTrialSubjectReadingID": 0x00120043,
    "IssuerOfClinicalTrialTimePointID": 0x00120055,
    "IssuerOfPatientID": 0x00100021,
    "IssuerOfPatientIDQualifiersSequence": 0x00100024,
    "IssuerOfServiceEpisodeIDSequence": 0x00380064,
    "LastMenstrualDate": 0x001021D0,
    "LongitudinalTemporalEventType": 0x00120053,
    "LongitudinalTemporalOffsetFromEvent": 0x00120052,
    "MeasuredAPDimension": 0x00101023,
    "MeasuredLateralDimension": 0x00101024,
    "MedicalAlerts": 0x00102000,
    "NameOfPhysiciansReadingStudy": 0x00081060,
    "Occupation": 0x00102180,
    "OtherClinicalTrialProtocolIDsSequence": 0x00120023,
    "OtherPatientIDsSequence": 0x00101002,
    "OtherPatientNames": 0x00101001,
    "PatientAge": 0x00101010,
    "PatientAlternativeCalendar": 0x00100035,
    "PatientBirthDate": 0x00100030,
    "PatientBirthDateInAlternativeCalendar": 0x00100033,
    "PatientBirthTime": 0x00100032,
    "PatientBodyMassIndex": 0x00101022,
    "PatientBreedCodeSequence": 0x00102293,
    "PatientBreedDescription": 0x00102292,
    "PatientComments": 0x00104000,
    "PatientDeathDateInAlternativeCalendar": 0x00100034,
    "PatientID": 0x00100020,
    "PatientIdentityRemoved": 0x00120062,
    "PatientName": 0x00100010,
    "PatientSex": 0x00100040,
    "PatientSexNeutered": 0x00102203,
    "PatientSize": 0x00101020,
    "PatientSizeCodeSequence": 0x00101021,
    "PatientSpeciesCodeSequence": 0x00102202,
    "PatientSpeciesDescription": 0x00102201,
    "PatientState": 0x00380500,
    "PatientWeight": 0x00101030,
    "PhysiciansOfRecord": 0x00081048,
    "PhysiciansOfRecordIdentificationSequence": 0x00081049,
    "PhysiciansReadingStudyIdentificationSequence": 0x00081062,
    "PregnancyStatus": 0x001021C0,
    "ProcedureCodeSequence": 0x00081032,
    "QualityControlSubject": 0x00100200,
    "ReasonForPerformedProcedureCodeSequence": 0x00401012,
    "ReasonForVisit": 0x00321066,
    "ReasonForVisitCodeSequence": 0x00321067,
    "ReferencedPatientPhotoSequence": 0x00101100,
    "ReferencedPatientSequence": 0x00081120,
    "ReferencedStudySequence": 0x00081110,
    "ReferringPhysicianIdentificationSequence": 0x00080096,
    "ReferringPhysicianName": 0x00080090,
    "RequestingService": 0x00321033,
    "RequestingServiceCodeSequence": 0x00321034,
    "ResponsibleOrganization": 0x00102299,
    "ResponsiblePerson": 0x00102297,
    "ResponsiblePersonRole": 0x00102298,
    "ServiceEpisodeDescription": 0x00380062,
    "ServiceEpisodeID": 0x00380060,
    "SmokingStatus": 0x001021A0,
    "SourcePatientGroupIdentificationSequence": 0x00100026,
    "StrainAdditionalInformation": 0x00100218,
    "StrainCodeSequence": 0x00100219,
    "StrainDescription": 0x00100212,
    "StrainNomenclature": 0x00100213,
    "StrainStockSequence": 0x00100216,
    "StudyDate": 0x00080020,
    "StudyDescription": 0x00081030,
    "StudyID": 0x00200010,
    "StudyInstanceUID": 0x0020000D,
    "StudyTime": 0x00080030,
    "TypeOfPatientID": 0x00100022,
}
PATIENT_STUDY_KEYWORDS = tuple(PATIENT_STUDY_TAGS)
_PYDICOM_ROOT = "1.2.826.0.1.3680043.8.498."
_METHOD = "PS3.15 Basic Profile, Retain UIDs (dicognito)"


def _walk(ds: Any) -> Iterator[Any]:
    yield ds
    for elem in list(ds):
        if elem.VR == "SQ":
            for item in elem.value:
                yield from _walk(item)


def copy_patient_study(dst: Any, src: Any) -> None:
    """Copy the Patient and Study modules of a source image into a derived object (copies, not shared elements).

    Parameters
    ----------
    dst : pydicom.Dataset
        The derived object.
    src : pydicom.Dataset
        A source image header.
    """
    import copy

    for tag in PATIENT_STUDY_TAGS.values():
        if tag in src:
            dst.add(copy.deepcopy(src[tag]))


def deidentify(ds: Any, *, seed: str | None = None) -> None:
    """De-identify an SR / SEG dataset in place (Basic Profile, Retain UIDs Option).

    Parameters
    ----------
    ds : pydicom.Dataset
        An object built from source images (it carries their Patient and Study modules).
    seed : str, optional
        Seeds dicognito's replacements (default: the Study Instance UID), so the
        SR and SEG of one study get the same replacement values.

    Notes
    -----
    Every UID is kept (Retain UIDs Option): the SR still references the SEG
    and the source images, and ``report.json`` keeps ``study_instance_uid``.
    Type 2 patient attributes end up present and empty.
    """
    from dicognito.anonymizer import Anonymizer
    from dicognito.element_anonymizer import ElementAnonymizer
    from pydicom.dataset import Dataset

    class _KeepUIDs(ElementAnonymizer):  # Retain UIDs Option
        def __call__(self, dataset: Any, data_element: Any) -> bool:
            return bool(data_element.VR == "UI")

        def describe_actions(self) -> Iterator[str]:
            yield "Keep every UID (PS3.15 Retain UIDs Option)"

    anonymizer = Anonymizer(seed=seed or str(getattr(ds, "StudyInstanceUID", "") or "netlm"))
    anonymizer.add_element_handler(_KeepUIDs())
    if not hasattr(ds, "file_meta"):
        from pydicom.dataset import FileMetaDataset

        ds.file_meta = FileMetaDataset()
    for item in _walk(ds):  # dicognito parses text; highdicom stores some dates as date objects
        for elem in item:
            if elem.VR in ("DA", "DT", "TM") and elem.value not in (None, "") and not isinstance(elem.value, str):
                elem.value = str(elem.value)
    anonymizer.anonymize(ds)
    for item in _walk(ds):
        for kw in BASIC_PROFILE_REMOVED:
            if kw in item:
                delattr(item, kw)
    for kw in BASIC_PROFILE_EMPTIED:
        if kw in ds:
            setattr(ds, kw, "")
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = _METHOD
    codes = []
    for value, meaning in (("113100", "Basic Application Confidentiality Profile"), ("113108", "Retain UIDs Option")):
        c = Dataset()
        c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, "DCM", meaning
        codes.append(c)
    ds.DeidentificationMethodCodeSequence = codes


def deidentification_elements() -> dict[int, bytes]:
    """Patient Identity Removed, De-identification Method and its code sequence as :func:`deidentify` sets them,
    encoded (Explicit VR Little Endian) for writers that do not build pydicom datasets."""
    from . import _dicom_bytes as B

    codes = [
        B.code_item(value, "DCM", meaning)
        for value, meaning in (
            ("113100", "Basic Application Confidentiality Profile"),
            ("113108", "Retain UIDs Option"),
        )
    ]
    return {
        0x00120062: B.text(0x00120062, "CS", "YES"),
        0x00120063: B.text(0x00120063, "LO", _METHOD),
        0x00120064: B.sequence(0x00120064, codes),
    }


def result_uid(*parts: Any) -> str:
    """A UID derived from ``parts`` (same inputs, same UID), under pydicom's UID root.

    Parameters
    ----------
    *parts
        JSON-serialisable values naming the object (study UID, kind, tool
        version, a digest of the measured content, ...).

    Returns
    -------
    str
        A valid UID (at most 64 characters).
    """
    text = json.dumps(parts, sort_keys=True, default=str)
    entropy = hashlib.sha256(text.encode()).hexdigest()
    # pydicom's generate_uid(entropy_srcs=[entropy]) under its root (tests/test_seg_writer.py checks the equality),
    # without importing pydicom
    return f"{_PYDICOM_ROOT}{int(hashlib.sha512(entropy.encode()).hexdigest(), 16)}"[:64]
