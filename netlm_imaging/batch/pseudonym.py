"""Stable pseudonyms for study folder names (``netlm batch --pseudonymize``).

Study folders are often named after the patient ("DOE_JOHN_12345678"), and the
study id becomes the cohort.csv key, the report file name and the QA index
entry. With pseudonymization each study id is replaced by
``S-<12 hex digits>`` = HMAC-SHA256(secret, study id); the secret and the table
pseudonym -> original id (the re-identification key) are written to a
separate key file, by default *beside* the output folder
(``<out>.pseudonym-key.json``, mode 0600), so sharing the output folder shares
no names. The same key file gives the same pseudonyms on every run (and so
``--resume`` works); a new key file gives new ones.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import InputError
from .cohort import Study

__all__ = ["default_key_path", "pseudonym", "pseudonymize_studies", "scrub_study_path"]


def default_key_path(out_dir: str | os.PathLike[str]) -> Path:
    """``<out>.pseudonym-key.json`` beside the output folder (never inside it)."""
    out = Path(out_dir).resolve()
    return out.parent / f"{out.name}.pseudonym-key.json"


def pseudonym(secret: str, study_id: str) -> str:
    """``S-`` + the first 12 hex digits of HMAC-SHA256(secret, study_id).

    Examples
    --------
    >>> pseudonym("00" * 32, "DOE_JOHN")
    'S-0aaa1c1a477d'
    """
    return "S-" + hmac.new(bytes.fromhex(secret), study_id.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def _load_key(path: Path) -> tuple[str, dict[str, str]]:
    if not path.exists():
        return secrets.token_hex(32), {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        secret = str(data["secret"])
        bytes.fromhex(secret)
        return secret, {str(k): str(v) for k, v in (data.get("studies") or {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: not a pseudonym key file written by netlm batch --pseudonymize ({type(exc).__name__}); "
            "give another --pseudonym-key path, or restore the file"
        ) from None


def pseudonymize_studies(studies: Sequence[Study], key_path: str | os.PathLike[str]) -> list[Study]:
    """Replace every study id by its pseudonym; write (or extend) the key file.

    Parameters
    ----------
    studies : sequence of Study
        From :func:`~netlm_imaging.batch.cohort.discover_cohort`.
    key_path : path-like
        The key file (created with mode 0600 if absent; its secret is reused if present).

    Returns
    -------
    list of Study
        Same studies, ids replaced, ``pseudonymized`` set, sorted by pseudonym.

    Raises
    ------
    InputError
        An unreadable key file, or two study ids with one pseudonym.
    """
    path = Path(key_path)
    secret, table = _load_key(path)
    out = []
    for s in studies:
        p = pseudonym(secret, s.study_id)
        if table.get(p, s.study_id) != s.study_id:
            raise InputError(f"{path}: pseudonym {p} already stands for another study; use a new key file")
        table[p] = s.study_id
        out.append(replace(s, study_id=p, pseudonymized=True))
    text = json.dumps({"secret": secret, "studies": dict(sorted(table.items()))}, indent=2) + "\n"
    old = os.umask(0o077)
    try:
        atomic_write_text(path, text)
    finally:
        os.umask(old)
    with contextlib.suppress(OSError):
        path.chmod(0o600)
    return sorted(out, key=lambda s: s.study_id)


def scrub_study_path(text: str, study: Study) -> str:
    """``text`` with the study folder (any spelling of its path) replaced by the study id (its pseudonym).

    Error lines name the files they are about; for a pseudonymized study they must name
    ``<pseudonym>/...``, never the real folder, which often carries the patient's name.

    Examples
    --------
    >>> scrub_study_path("/data/DOE_JOHN/ct: bad", Study("S-0a1b2c3d4e5f", Path("/data/DOE_JOHN")))
    'S-0a1b2c3d4e5f/ct: bad'
    """
    for form in sorted({str(study.path), os.path.abspath(study.path), str(Path(study.path).resolve())}, key=len)[::-1]:
        text = text.replace(form, study.study_id)
    return text
