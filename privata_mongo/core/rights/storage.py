"""Where each part of a data subject's data is stored, as an access or an export states it.

GDPR Chapter V asks that a data subject (and an auditor) can learn where their data is kept.
A subject's data has three parts, each stored apart: the identity rows (encrypted, in the
region's identity store), the data key that decrypts them (in the region's key vault, wrapped
by the region's master key) and the clinical rows (in the application's store). ``Storage``
names each by region, database and collection (or key vault namespace and master-key
provider): never a host, a connection string or key material, which would say more than an
auditor needs and could carry credentials. Without regions the region is ``None`` and the
stores are the deployment's own, in the same shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from privata_mongo.core.ops import Op

__all__ = ["KeyStoredAt", "ModelStorage", "Storage", "StoredAt", "Where"]


@dataclass(frozen=True, slots=True)
class StoredAt:
    """One collection holding rows of the subject.

    Attributes:
        region: the region whose store holds them; ``None``: the application's own store
            (the clinical rows, and every part when no regions are configured).
        database: the database name.
        collection: the collection name.
    """

    region: str | None
    database: str
    collection: str

    def document(self) -> dict[str, Any]:
        """Plain data, as an export writes it."""
        return {"region": self.region, "database": self.database, "collection": self.collection}


@dataclass(frozen=True, slots=True)
class KeyStoredAt:
    """The key vault holding the subject's data key, and the master key wrapping it.

    Attributes:
        region: the region whose key vault holds it (``None``: the deployment's vault).
        key_vault: the vault's ``database.collection``.
        master_key: the KMS provider name of the wrapping master key (``local:eu``,
            ``aws:eu``, ``local``), as the stored key document names it.
    """

    region: str | None
    key_vault: str
    master_key: str | None

    def document(self) -> dict[str, Any]:
        """Plain data, as an export writes it."""
        return {"region": self.region, "key_vault": self.key_vault, "master_key": self.master_key}


@dataclass(frozen=True, slots=True)
class ModelStorage:
    """Where one model's rows of the subject are stored.

    Attributes:
        model: the model name.
        clinical: the collection of its documents (the clinical half of split ones).
        identity: the identity collection holding the subject's identity row; ``None`` when
            the model is not split or holds no identity row of the subject.
    """

    model: str
    clinical: StoredAt
    identity: StoredAt | None

    def document(self) -> dict[str, Any]:
        """Plain data, as an export writes it."""
        return {
            "model": self.model,
            "clinical": self.clinical.document(),
            "identity": None if self.identity is None else self.identity.document(),
        }


@dataclass(frozen=True, slots=True)
class Storage:
    """Where the data of one subject is stored: its region, its data key, each model's rows.

    Attributes:
        region: the subject's region (``None``: no regions are configured).
        key: where its data key is (``None``: it has none, or identity data is not encrypted).
        models: each model holding documents of the subject.
    """

    region: str | None
    key: KeyStoredAt | None
    models: tuple[ModelStorage, ...]

    def document(self) -> dict[str, Any]:
        """Plain data, as an export writes it."""
        return {
            "region": self.region,
            "key": None if self.key is None else self.key.document(),
            "models": [m.document() for m in self.models],
        }


@dataclass(frozen=True, slots=True)
class Where(Op[Storage]):
    """Request: where the data of ``pseudonym`` in ``models`` is stored."""

    pseudonym: str
    models: tuple[str, ...]
