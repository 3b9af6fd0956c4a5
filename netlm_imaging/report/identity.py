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
    "copy_patient_study",
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
#: this list against highdicom's tables of the standard.
PATIENT_STUDY_KEYWORDS = (
    "AccessionNumber",
    "AdditionalPatientHistory",
    "AdmissionID",
    "AdmittingDiagnosesCodeSequence",
    "AdmittingDiagnosesDescription",
    "Allergies",
    "BreedRegistrationSequence",
    "ClinicalTrialProtocolEthicsCommitteeApprovalNumber",
    "ClinicalTrialProtocolEthicsCommitteeName",
    "ClinicalTrialProtocolID",
    "ClinicalTrialProtocolName",
    "ClinicalTrialSiteID",
    "ClinicalTrialSiteName",
    "ClinicalTrialSponsorName",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
    "ClinicalTrialTimePointDescription",
    "ClinicalTrialTimePointID",
    "ClinicalTrialTimePointTypeCodeSequence",
    "ConsentForClinicalTrialUseSequence",
    "ConsultingPhysicianIdentificationSequence",
    "ConsultingPhysicianName",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "EthnicGroupCodeSequence",
    "GeneticModificationsSequence",
    "GroupOfPatientsIdentificationSequence",
    "IssuerOfAccessionNumberSequence",
    "IssuerOfAdmissionIDSequence",
    "IssuerOfClinicalTrialProtocolID",
    "IssuerOfClinicalTrialSiteID",
    "IssuerOfClinicalTrialSubjectID",
    "IssuerOfClinicalTrialSubjectReadingID",
    "IssuerOfClinicalTrialTimePointID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "IssuerOfServiceEpisodeIDSequence",
    "LastMenstrualDate",
    "LongitudinalTemporalEventType",
    "LongitudinalTemporalOffsetFromEvent",
    "MeasuredAPDimension",
    "MeasuredLateralDimension",
    "MedicalAlerts",
    "NameOfPhysiciansReadingStudy",
    "Occupation",
    "OtherClinicalTrialProtocolIDsSequence",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAge",
    "PatientAlternativeCalendar",
    "PatientBirthDate",
    "PatientBirthDateInAlternativeCalendar",
    "PatientBirthTime",
    "PatientBodyMassIndex",
    "PatientBreedCodeSequence",
    "PatientBreedDescription",
    "PatientComments",
    "PatientDeathDateInAlternativeCalendar",
    "PatientID",
    "PatientIdentityRemoved",
    "PatientName",
    "PatientSex",
    "PatientSexNeutered",
    "PatientSize",
    "PatientSizeCodeSequence",
    "PatientSpeciesCodeSequence",
    "PatientSpeciesDescription",
    "PatientState",
    "PatientWeight",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "PhysiciansReadingStudyIdentificationSequence",
    "PregnancyStatus",
    "ProcedureCodeSequence",
    "QualityControlSubject",
    "ReasonForPerformedProcedureCodeSequence",
    "ReasonForVisit",
    "ReasonForVisitCodeSequence",
    "ReferencedPatientPhotoSequence",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "ReferringPhysicianIdentificationSequence",
    "ReferringPhysicianName",
    "RequestingService",
    "RequestingServiceCodeSequence",
    "ResponsibleOrganization",
    "ResponsiblePerson",
    "ResponsiblePersonRole",
    "ServiceEpisodeDescription",
    "ServiceEpisodeID",
    "SmokingStatus",
    "SourcePatientGroupIdentificationSequence",
    "StrainAdditionalInformation",
    "StrainCodeSequence",
    "StrainDescription",
    "StrainNomenclature",
    "StrainStockSequence",
    "StudyDate",
    "StudyDescription",
    "StudyID",
    "StudyInstanceUID",
    "StudyTime",
    "TypeOfPatientID",
)
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

    from pydicom.datadict import tag_for_keyword

    for kw in PATIENT_STUDY_KEYWORDS:
        tag = tag_for_keyword(kw)
        if tag is not None and tag in src:
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
    from pydicom.uid import generate_uid

    text = json.dumps(parts, sort_keys=True, default=str)
    return str(generate_uid(entropy_srcs=[hashlib.sha256(text.encode()).hexdigest()]))
