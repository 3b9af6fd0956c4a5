"""Closing figures of issue 16 ("faults without loss"), reproducibly: ``python3 tools/fault_figures.py [--kills N]``.

Builds synthetic studies with the test factories (tests/dicom_factory.py, tests/seg_factory.py; oblique
CT + DICOM SEG, LiTS-style NIfTI label maps), plants one defect per case, runs the real CLI in a child
process for each, and counts:

* bad inputs tried, clean rejections (exit 2/3, exactly one ``netlm: error:`` line, no traceback),
  tracebacks, internal errors (exit 70), silent wrong numbers (exit 0 with a volume that differs from
  the analytic truth, or a defect accepted without the warning that should name it);
* identifier leaks: patient name / ID / birth date / folder name found in any file written by
  ``analyze`` and by ``batch --pseudonymize`` for a study folder named after the patient;
* kill/resume runs identical: ``batch -j 2`` SIGKILLed at a seeded random moment, then ``--resume``;
  cohort.csv compared with an uninterrupted run's, apart from the run columns (elapsed_s, resumed).

Prints one JSON object. Seeded (``--seed``); needs no network; a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import warnings  # noqa: E402

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from conftest import oblique_affine  # noqa: E402
from dicom_factory import write_image_series  # noqa: E402
from seg_factory import SegmentSpec, write_seg  # noqa: E402

SHAPE = (16, 14, 8)
SPACING = (1.5, 1.5, 3.0)
AFF = oblique_affine(spacing=SPACING, angles_deg=(10.0, 0.0, 0.0), origin=(-20.0, -15.0, 100.0))
RAS = np.diag([-1.0, -1.0, 1.0, 1.0]) @ AFF
VOXEL_ML = SPACING[0] * SPACING[1] * SPACING[2] / 1000.0
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
SECRETS = ("Doe", "Jane", "SECRET-ID-123", "19700101", "MRN4711")
RUN_COLUMNS = 2


def liver() -> np.ndarray:
    i, j, k = np.indices(SHAPE)
    return ((i - 8) / 6.0) ** 2 + ((j - 7) / 5.0) ** 2 + ((k - 3.5) / 3.2) ** 2 <= 1.0


TRUTH_ML = float(liver().sum() * VOXEL_ML)


def netlm(args: list, *, close_stdout: bool = False) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "netlm_imaging.cli", *map(str, args)]
    if close_stdout:
        argv = ["sh", "-c", " ".join(shlex.quote(a) for a in argv) + " >&-"]
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600)


def base_study(root: Path) -> Path:
    d = root / "base"
    ct = write_image_series(d / "ct", np.where(liver(), 60.0, -50.0), AFF, seed=5, shuffle_names=True)
    write_seg(d / "seg.dcm", ct, [SegmentSpec("Liver", liver())])
    return d


def ct_files(d: Path) -> list[Path]:
    normal = np.cross(AFF[:3, 0], AFF[:3, 1])
    files = list((d / "ct").iterdir())
    return sorted(files, key=lambda f: float(np.dot(pydicom.dcmread(f).ImagePositionPatient, normal)))


def edit(f: Path, **values) -> None:
    ds = pydicom.dcmread(f)
    for k, v in values.items():
        setattr(ds, k, v)
    ds.save_as(f)


def nifti_pair(d: Path, lab: np.ndarray) -> tuple[Path, Path]:
    d.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.where(lab > 0, 60, -50).astype(np.int16), RAS), d / "ct.nii.gz")
    nib.save(nib.Nifti1Image(lab, RAS), d / "seg.nii.gz")
    return d / "ct.nii.gz", d / "seg.nii.gz"


def deflate_bomb(f: Path) -> None:
    ds = pydicom.dcmread(f)
    body = pydicom.filebase.DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(body, ds)
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    parts = [comp.compress(body.getvalue())]
    parts.append(comp.compress(b"\xe1\x7f\x10\x00LO\x0c\x00NETLM TEST  "))
    parts.append(comp.compress(b"\xe1\x7f\x10\x10OB\x00\x00" + (1 << 30).to_bytes(4, "little")))
    zeros = bytes(1 << 24)
    parts += [comp.compress(zeros) for _ in range(64)]
    parts.append(comp.flush())
    meta = pydicom.dataset.FileMetaDataset(ds.file_meta)
    meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    head = pydicom.filebase.DicomBytesIO()
    head.write(b"\0" * 128 + b"DICM")
    pydicom.filewriter.write_file_meta_info(head, meta, enforce_standard=False)
    f.write_bytes(head.getvalue() + b"".join(parts))


# Each rejection case: (root, base) -> argv (and options); it must end in a clean rejection.
def rejection_cases() -> dict[str, Callable[[Path, Path], tuple[list, dict]]]:
    def copy(base: Path, root: Path, name: str) -> Path:
        d = root / name
        shutil.copytree(base, d)
        return d

    def analyze(d: Path, root: Path, name: str, *extra) -> list:
        return ["analyze", d, "--out", root / f"out_{name}", *extra]

    cases: dict[str, Callable[[Path, Path], tuple[list, dict]]] = {}

    def case(fn):
        cases[fn.__name__] = fn
        return fn

    @case
    def truncated_pixels(base, root):
        d = copy(base, root, "truncated_pixels")
        f = ct_files(d)[2]
        f.write_bytes(f.read_bytes()[:-100])
        return analyze(d, root, "tp"), {}

    @case
    def truncated_header(base, root):
        d = copy(base, root, "truncated_header")
        f = ct_files(d)[3]
        f.write_bytes(f.read_bytes()[:300])
        return analyze(d, root, "th"), {}

    @case
    def zero_byte_file(base, root):
        d = copy(base, root, "zero_byte")
        ct_files(d)[1].write_bytes(b"")
        return analyze(d, root, "zb"), {}

    @case
    def missing_slice(base, root):
        d = copy(base, root, "missing_slice")
        ct_files(d)[3].unlink()
        return analyze(d, root, "ms"), {}

    @case
    def nan_orientation(base, root):
        d = copy(base, root, "nan_iop")
        edit(ct_files(d)[2], ImageOrientationPatient=["nan", 0, 0, 0, 1, 0])
        return analyze(d, root, "nan"), {}

    @case
    def infinite_position(base, root):
        d = copy(base, root, "inf_ipp")
        f = ct_files(d)[2]
        ipp = pydicom.dcmread(f).ImagePositionPatient
        edit(f, ImagePositionPatient=[ipp[0], "inf", ipp[2]])
        return analyze(d, root, "inf"), {}

    @case
    def infinite_position_allow_resample(base, root):
        d = copy(base, root, "inf_ipp_resample")
        f = ct_files(d)[2]
        ipp = pydicom.dcmread(f).ImagePositionPatient
        edit(f, ImagePositionPatient=[ipp[0], "inf", ipp[2]])
        return analyze(d, root, "infr", "--allow-resample"), {}

    @case
    def deflate_bomb_in_folder(base, root):
        d = copy(base, root, "bomb")
        deflate_bomb(ct_files(d)[2])
        return analyze(d, root, "bomb"), {}

    @case
    def random_bytes_nifti(base, root):
        ct, seg = nifti_pair(root / "rand", liver().astype(np.uint8))
        ct.write_bytes(np.random.default_rng(7).bytes(5000))
        return ["analyze", "--image", ct, "--seg", seg, "--out", root / "out_rand"], {}

    @case
    def broken_seg_nifti(base, root):
        ct, seg = nifti_pair(root / "brokenseg", liver().astype(np.uint8))
        seg.write_bytes(b"\x1f\x8b" + bytes(range(200)))
        return ["analyze", "--image", ct, "--seg", seg, "--out", root / "out_bs"], {}

    @case
    def empty_label_map(base, root):
        ct, seg = nifti_pair(root / "empty", np.zeros(SHAPE, np.uint8))
        return ["analyze", "--image", ct, "--seg", seg, "--out", root / "out_empty"], {}

    @case
    def float_label_map_far_from_integers(base, root):
        ct, seg = nifti_pair(root / "float", liver().astype(np.uint8))
        nib.save(nib.Nifti1Image(np.where(liver(), 1.2, 0.0), RAS), seg)
        return ["analyze", "--image", ct, "--seg", seg, "--out", root / "out_float"], {}

    @case
    def unknown_label_role_batch(base, root):
        return ["batch", base.parent, "--out", root / "out_lver", "--labels", "lver=1"], {}

    @case
    def out_is_a_file(base, root):
        f = root / "a_file"
        f.write_text("x")
        return analyze(base, root, "f", "--out", f), {}

    @case
    def batch_out_is_a_file(base, root):
        f = root / "b_file"
        f.write_text("x")
        return ["batch", base.parent, "--out", f], {}

    @case
    def json_to_closed_stdout(base, root):
        return ["analyze", base, "--json", "-"], {"close_stdout": True}

    @case
    def out_under_a_device_file(base, root):
        return ["analyze", base, "--out", "/dev/full/x"], {}

    return cases


# Inconsistent but unambiguous inputs: accepted, with the right number and a warning naming the defect.
def accepted_cases() -> dict[str, tuple[Callable[[Path], None], str]]:
    def seg(d: Path, fn) -> None:
        ds = pydicom.dcmread(d / "seg.dcm")
        fn(ds)
        ds.save_as(d / "seg.dcm")

    def srcs(ds):
        return [fr.DerivationImageSequence[0].SourceImageSequence[0] for fr in ds.PerFrameFunctionalGroupsSequence]

    def unknown(d):
        seg(d, lambda ds: [setattr(s, "ReferencedSOPInstanceUID", f"1.2.3.{n + 1}") for n, s in enumerate(srcs(ds))])

    def shuffled(d):
        def fn(ds):
            ss = srcs(ds)
            uids = [s.ReferencedSOPInstanceUID for s in ss]
            for s, u in zip(ss, uids[1:] + uids[:1]):
                s.ReferencedSOPInstanceUID = u

        seg(d, fn)

    def frame99(d):
        seg(d, lambda ds: setattr(srcs(ds)[1], "ReferencedFrameNumber", 99))

    def other_for(d):
        edit(ct_files(d)[4], FrameOfReferenceUID="1.2.3.999")

    def slope0(d):
        for f in ct_files(d):
            edit(f, RescaleSlope=0)

    return {
        "seg_unknown_source_images": (unknown, "not in the image series"),
        "seg_shuffled_source_images": (shuffled, "another slice than their position"),
        "seg_referenced_frame_99": (frame99, "ReferencedFrameNumber"),
        "slice_with_other_frame_of_reference": (other_for, "FrameOfReferenceUID 1.2.3.999"),
        "rescale_slope_0": (slope0, "RescaleSlope (0028,1053) is 0"),
    }


def classify(r: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    if "Traceback" in r.stderr:
        return "traceback"
    if r.returncode == 70:
        return "internal_error"
    if r.returncode in (2, 3) and len(lines) == 1 and lines[0].startswith("netlm: error: "):
        return "clean_rejection"
    if r.returncode == 0:
        return "accepted"
    return "unclean_rejection"


def leaks(folder: Path, extra: tuple[str, ...] = ()) -> list[str]:
    hits = []
    for p in folder.rglob("*"):
        text = p.name + (p.read_bytes().decode("latin-1") if p.is_file() else "")
        hits += [f"{p.relative_to(folder)}: {s}" for s in (*SECRETS, *extra) if s in text]
    return hits


def write_nifti_study(folder: Path, n: int) -> None:
    rng = np.random.default_rng(100 + n)
    lab = liver().astype(np.int16)
    c = (8 + rng.integers(-2, 3), 7 + rng.integers(-2, 3), 4)
    i, j, k = np.indices(SHAPE)
    lab[(i - c[0]) ** 2 + (j - c[1]) ** 2 + ((k - c[2]) * 2) ** 2 <= 4 + n % 3] = 2
    nifti_pair(folder, lab)


def csv_without_run_columns(p: Path) -> str:
    return "\n".join(",".join(line.split(",")[:-RUN_COLUMNS]) for line in p.read_text().splitlines())


def kill_resume(root: Path, n_runs: int, rng: random.Random) -> dict:
    cohort = root / "cohort"
    for n in range(12):
        write_nifti_study(cohort / f"s{n:02d}", n)
    ref = root / "kr_ref"
    assert netlm(["batch", cohort, "--out", ref, "--quiet"]).returncode == 0
    identical, killed_mid_run = 0, 0
    for run in range(n_runs):
        out = root / f"kr_{run}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "netlm_imaging.cli", "batch", str(cohort), "--out", str(out), "-j", "2", "--quiet"],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is None:
            killed_mid_run += 1
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        r = netlm(["batch", cohort, "--out", out, "--quiet", "--resume"])
        same = r.returncode == 0 and csv_without_run_columns(out / "cohort.csv") == csv_without_run_columns(
            ref / "cohort.csv"
        )
        identical += bool(same)
    return {"runs": n_runs, "killed_mid_run": killed_mid_run, "identical_after_resume": identical}


def main() -> int:
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")  # planting NaN / inf values warns
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=10, help="kill/resume runs (default 10)")
    ap.add_argument("--seed", type=int, default=16)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="netlm-faults-") as tmp:
        root = Path(tmp)
        base = base_study(root / "cohort_base")
        outcome: dict[str, str] = {}
        for name, build in rejection_cases().items():
            argv, kw = build(base, root)
            outcome[name] = classify(netlm(argv, **kw))
        wrong: list[str] = []
        for name, (plant, needle) in accepted_cases().items():
            d = root / name
            shutil.copytree(base, d)
            plant(d)
            out = root / f"out_{name}"
            r = netlm(["analyze", d, "--out", out])
            outcome[name] = classify(r)
            if r.returncode == 0:
                rep = json.loads((out / "report.json").read_text())
                ok = abs(rep["liver"]["volume_ml"] - TRUTH_ML) <= 1e-9 * TRUTH_ML and any(
                    needle in w for w in rep["warnings"]
                )
                outcome[name] = "accepted_right_number_with_warning" if ok else "silent_wrong"
                if not ok:
                    wrong.append(name)
        # identifiers: a study folder named after the patient, DICOM headers holding name / ID / birth date
        named = root / "named" / "DOE_JANE_MRN4711"
        shutil.copytree(base, named)
        netlm(["analyze", named, "--out", root / "id_analyze", "--quiet", "--html"])
        netlm(["batch", named.parent, "--out", root / "id_batch", "--pseudonymize", "--html", "--quiet"])
        leak_list = leaks(root / "id_analyze") + leaks(root / "id_batch", ("DOE_JANE",))
        # control: without --pseudonymize the folder name is echoed as the study id (documented), and found
        netlm(["batch", named.parent, "--out", root / "id_control", "--quiet"])
        control = len(leaks(root / "id_control", ("DOE_JANE",)))
        kr = kill_resume(root, args.kills, rng)
    counts = {k: sum(1 for v in outcome.values() if v == k) for k in sorted(set(outcome.values()))}
    figures = {
        "bad_inputs_tried": len(outcome),
        "clean_rejections": counts.get("clean_rejection", 0),
        "accepted_right_number_with_warning": counts.get("accepted_right_number_with_warning", 0),
        "tracebacks": counts.get("traceback", 0),
        "internal_errors": counts.get("internal_error", 0),
        "unclean_rejections": counts.get("unclean_rejection", 0),
        "silent_wrong_numbers": len(wrong) + counts.get("accepted", 0),
        "identifier_leaks": len(leak_list),
        "control_folder_name_hits_without_pseudonymize": control,
        "kill_resume": kr,
        "per_case": outcome,
        "leaks": leak_list,
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
