"""One hierarchy for everything privata itself raises.

Native errors (``NotUniqueError``, ``DoesNotExist``, ``DuplicateKeyError``, ``ValidationError`` …)
pass through unchanged where an application already expects them; the classes here cover what
only a privacy layer can get wrong: configuration, queries it cannot plan, keys, rights and audit.

Every message names the model, the field and the remedy, and never a value: these messages end
up in application logs, and a log line is not a place for personal data.
"""

from __future__ import annotations

__all__ = [
    "AuditUnavailable",
    "BreakGlassRefused",
    "CacheUnavailable",
    "ConfigurationError",
    "IntegrityError",
    "KeyUnavailable",
    "MissingAccessContext",
    "MissingPurpose",
    "PrivataError",
    "ProcessingRestricted",
    "ProtectedCollection",
    "RegionUnavailable",
    "SubjectErased",
    "TransferIncomplete",
    "UnknownRegion",
    "UnknownSubject",
    "UnsupportedQuery",
]


class PrivataError(Exception):
    """Base class of every error privata raises itself."""


class ConfigurationError(PrivataError):
    """The models or the settings cannot be served safely as declared.

    Raised when a model is compiled or a connection is made, before any document is written.
    """


class UnsupportedQuery(PrivataError):
    """A query, sort, update or pipeline cannot be executed with native results.

    Typical causes: a predicate or sort on an identity field that must be evaluated in the
    process and would read more documents than the configured scan limit, or an operator that
    cannot see identity fields (``$where``, ``$expr`` over identity fields).
    """

    def __init__(self, message: str, *, model: str, field: str | None = None) -> None:
        super().__init__(message)
        self.model = model
        self.field = field


class KeyUnavailable(PrivataError):
    """A key needed to read or write identity data is missing or cannot be used.

    Raised for a missing or wrong master key, a data key missing from the key vault, and a
    ciphertext that fails authentication (tampered). ``model`` and ``fields`` say what could
    not be read or written; ``pseudonyms`` names the data subjects whose data keys are missing
    (empty when the cause is not one subject's key), so an operator can look for those keys
    and an application can tell which subjects a failed listing was about. The message never
    carries a value.
    """

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        fields: tuple[str, ...] = (),
        pseudonyms: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.model = model
        self.fields = fields
        self.pseudonyms = pseudonyms


class IntegrityError(KeyUnavailable):
    """A stored identity ciphertext is not the one its row was sealed with.

    The ciphertext of an identity row names the data key it was made with (bytes 1-16 of the
    CSFLE value); that must be the key the key vault holds for the row's pseudonym. Another key
    means the ciphertext was moved from another subject's row (or the key vault's names were
    changed), so the row is not decrypted: a read would otherwise show one subject's identity
    under another's pseudonym. A subclass of ``KeyUnavailable`` because it fails the same way
    (closed, for the whole operation) and code that handles a tampered ciphertext handles this
    one too. ``pseudonyms`` names the rows concerned; the message never carries a value.
    """


class SubjectErased(PrivataError):
    """The data subject's identity was erased; the identity fields cannot be returned."""


class ProcessingRestricted(PrivataError):
    """Processing of this data subject's personal data is restricted (GDPR Art. 18).

    Raised before a write that would change a restricted subject's documents, unless the
    write runs under a purpose the restriction allows or under break-glass. ``pseudonyms``
    names the subjects found (by pseudonym, never a value).
    """

    def __init__(self, message: str, *, pseudonyms: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.pseudonyms = pseudonyms


class BreakGlassRefused(PrivataError):
    """Break-glass access was asked for without an actor or a reason.

    HIPAA §164.312(a)(2)(ii) emergency access must be accountable: every access under it is
    audited with who asked and why, so both are required before anything is lifted.
    """


class AuditUnavailable(PrivataError):
    """The audit trail could not be written, so no personal data was returned."""


class CacheUnavailable(PrivataError):
    """The shared cache could not be reached where a guarantee depends on it (an erasure).

    Reads and writes go on without the cache; an erasure does not start, because other
    processes would keep serving the subject's cached key until its TTL ends.
    """


class MissingAccessContext(PrivataError):
    """Personal data was touched without an access context while strict mode is on."""


class MissingPurpose(MissingAccessContext):
    """An operation declared a consent-based legal basis but no purpose.

    Consent (GDPR Art. 6(1)(a), 7) is given for a purpose: without one there is no consent to
    check the subjects against, and reading every subject would process data nobody
    consented to. Declare the purpose in the access context.
    """


class ProtectedCollection(PrivataError):
    """A write through the application's client to a collection only privata writes.

    The audit trail (records, checkpoints, ledger), the key vault and its tombstones (the
    erasure log) are written by the library through its own adapters; the application's
    handles (``get_db()``, Beanie's database, the proxy client) may read the audit trail but
    never change, drop or re-index any of them. ``namespace`` is the collection concerned,
    ``operator_handle`` what operator tooling uses instead.
    """

    def __init__(self, message: str, *, namespace: str, operator_handle: str) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.operator_handle = operator_handle


class UnknownSubject(PrivataError):
    """A data-subject right names no known subject, or names it ambiguously.

    The message says how the subject was named (model, field) and what to pass instead,
    never the value that was looked up.
    """


class UnknownRegion(ConfigurationError):
    """A data subject was placed in, or an operation pinned to, a region that is not configured.

    ``region`` is the region name as the resolver or the caller gave it (a configuration name,
    never a value of the document); the message lists the configured regions.
    """

    def __init__(self, message: str, *, region: str | None = None) -> None:
        super().__init__(message)
        self.region = region


class RegionUnavailable(PrivataError):
    """The stores of one region could not be reached, so the operation needing them failed.

    Operations on subjects of other regions keep working; ``region`` names the region that
    failed (never a subject or a value), so an operator knows which infrastructure to check.
    """

    def __init__(self, region: str) -> None:
        super().__init__(
            f"a store or the key vault of region '{region}' cannot be reached; "
            "operations on subjects of other regions keep working (check that region's "
            "servers, or read with partial results allowed)"
        )
        self.region = region


class TransferIncomplete(PrivataError):
    """A ``transfer_region`` stopped before deleting anything from the source region.

    Raised when the copies made in the target region's stores cannot be verified; the
    subject's data is then held in both regions, and running the transfer again completes it.
    """
