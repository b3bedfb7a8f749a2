"""The receipt of an erasure, and the check an auditor runs on it.

A receipt says what was erased, where, when, by whom and under which legal basis: the
subject's pseudonym, per model the collection, the policy applied and the rows deleted or kept,
and whether the subject's data key was shredded. It holds no personal data (names, counts and
the pseudonym only). ``digest`` is SHA-256 over a canonical encoding of every other field
(JSON with sorted keys, dates at MongoDB's millisecond precision, the same encoding the audit
chain uses), so the receipt handed to the subject, the one in the erasure log and a copy an
auditor holds can be compared with nothing but ``hashlib``; ``verify_receipt`` does it. The
digest detects a changed receipt; it is not a signature (anyone can compute it): the ``erase``
records of the keyed audit chain are the proof that privata wrote it.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from privata_mongo.core.audit import canonical

__all__ = ["ErasureReceipt", "ModelErasure", "receipt_digest", "verify_receipt"]

_SEAL = "digest"


@dataclass(frozen=True, slots=True)
class ModelErasure:
    """What an erasure did to one model.

    Attributes:
        model: the model's name.
        collection: its (clinical) collection.
        policy: ``pseudonymise`` or ``delete`` (``core.rights.policy``).
        identity_deleted: identity rows deleted (with their blind index terms).
        clinical_deleted: documents deleted under the ``delete`` policy.
        clinical_kept: documents kept, pseudonymised, under the ``pseudonymise`` policy.
    """

    model: str
    collection: str
    policy: str
    identity_deleted: int = 0
    clinical_deleted: int = 0
    clinical_kept: int = 0

    def document(self) -> dict[str, Any]:
        """The plain form stored in the erasure log."""
        return {
            "model": self.model,
            "collection": self.collection,
            "policy": self.policy,
            "identity_deleted": self.identity_deleted,
            "clinical_deleted": self.clinical_deleted,
            "clinical_kept": self.clinical_kept,
        }


@dataclass(frozen=True, slots=True)
class ErasureReceipt:
    """The receipt of one subject's erasure (GDPR Art. 17), as first completed.

    Attributes:
        pseudonym: the subject.
        erased_at: when the erasure began (UTC, milliseconds).
        actor: who asked for it (the access context).
        purpose: why.
        legal_basis: under which legal basis.
        models: what was done per model, in the order of the data map.
        key_shredded: the subject's data key existed and was destroyed (a tombstone says so).
        digest: SHA-256 (hex) of the canonical encoding of every other field.
    """

    pseudonym: str
    erased_at: datetime.datetime
    actor: str | None
    purpose: str | None
    legal_basis: str | None
    models: tuple[ModelErasure, ...]
    key_shredded: bool
    digest: str = ""

    def body(self) -> dict[str, Any]:
        """Every field but ``digest``, as plain data."""
        return {
            "pseudonym": self.pseudonym,
            "erased_at": self.erased_at,
            "actor": self.actor,
            "purpose": self.purpose,
            "legal_basis": self.legal_basis,
            "models": [m.document() for m in self.models],
            "key_shredded": self.key_shredded,
        }

    def document(self) -> dict[str, Any]:
        """The plain form stored in the erasure log and handed to auditors."""
        return {**self.body(), _SEAL: self.digest}

    def sealed(self) -> ErasureReceipt:
        """This receipt with its digest computed."""
        return ErasureReceipt(**{**_fields(self), _SEAL: receipt_digest(self.body())})

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ErasureReceipt:
        """The receipt of a stored document (``document()``'s inverse)."""
        return cls(
            pseudonym=str(document["pseudonym"]),
            erased_at=document["erased_at"],
            actor=document.get("actor"),
            purpose=document.get("purpose"),
            legal_basis=document.get("legal_basis"),
            models=tuple(ModelErasure(**dict(m)) for m in document.get("models", ())),
            key_shredded=bool(document.get("key_shredded")),
            digest=str(document.get(_SEAL, "")),
        )


def _fields(receipt: ErasureReceipt) -> dict[str, Any]:
    return {name: getattr(receipt, name) for name in ErasureReceipt.__slots__}


def receipt_digest(body: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the canonical encoding of a receipt's fields (``digest`` left out)."""
    return hashlib.sha256(canonical(body, _SEAL)).hexdigest()


def verify_receipt(receipt: ErasureReceipt | Mapping[str, Any]) -> bool:
    """Whether a receipt (or its stored document) is unchanged since it was issued.

    The digest is recomputed from the other fields; any changed count, model, date, actor or
    pseudonym gives another digest.
    """
    document = receipt.document() if isinstance(receipt, ErasureReceipt) else receipt
    stored = document.get(_SEAL)
    if not isinstance(stored, str) or not stored:
        return False
    body = {k: v for k, v in document.items() if k not in (_SEAL, "_id")}
    return hmac.compare_digest(receipt_digest(body), stored)
