"""The access context: who touches personal data and why, for the audit trail.

The context lives in a ``contextvars.ContextVar``, so it follows the code that runs on behalf
of a request: each asyncio task sees the context of the code that created it (tasks copy the
context when they are created), and a thread started with ``contextvars.copy_context().run``
(or an executor wrapped likewise; FastAPI/Starlette do this for sync endpoints) sees the
context of the code that submitted it. A plain new ``threading.Thread`` starts with an empty
context, as Python defines it — that thread then falls back to the configured default.

Every audited operation reads the context once, when it starts (``resolve_access``): the
context in force *then* is recorded, for every record of the operation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar
from dataclasses import replace

from privata_mongo.config import current
from privata_mongo.core.audit import AccessContext
from privata_mongo.errors import BreakGlassRefused, MissingAccessContext

__all__ = [
    "AccessContext",
    "PartialResults",
    "access_context",
    "break_glass",
    "current_access",
    "partial_allowed",
    "partial_results",
    "pinned_regions",
    "resolve_access",
    "subject_request",
    "use_access",
    "whole_results",
    "within_regions",
]

_current: ContextVar[AccessContext | None] = ContextVar("privata_access_context", default=None)


@contextmanager
def access_context(
    actor: str | None = None,
    purpose: str | None = None,
    legal_basis: str | None = None,
    request_id: str | None = None,
) -> Iterator[AccessContext]:
    """Run a block on behalf of ``actor`` for ``purpose`` under ``legal_basis``.

    Nested blocks replace the outer context for their duration. Example::

        with privata_mongo.access_context(actor="dr.lee", purpose="treatment",
                                          legal_basis="art9_2h", request_id=rid):
            patient = Patient.objects.get(id=pid)
    """
    context = AccessContext(actor, purpose, legal_basis, request_id)
    token = _current.set(context)
    try:
        yield context
    finally:
        try:
            _current.reset(token)
        except ValueError:  # exited in another context (some frameworks do): restore anyway
            _current.set(None)


@contextmanager
def break_glass(*, actor: str, reason: str) -> Iterator[AccessContext]:
    """Emergency access (HIPAA §164.312(a)(2)(ii)): lift restriction for the block.

    The block runs as ``actor``, keeping the purpose and legal basis of the enclosing
    context; restricted subjects are read and written as if unrestricted (objections still
    apply: an emergency is not research or marketing). Every audit record made in the block
    has the severity ``break_glass`` and carries ``reason``, so an auditor lists them all
    (``privata_mongo.audit.break_glass_accesses``). The reason is free text written by the
    actor for the auditor: it should name the emergency, not the patient.

    Raises:
        BreakGlassRefused: ``actor`` or ``reason`` is empty.
    """
    if not actor or not actor.strip():
        raise BreakGlassRefused("break_glass needs the actor who asks for emergency access")
    if not reason or not reason.strip():
        raise BreakGlassRefused(
            "break_glass needs a reason: emergency access is audited with why it was used; "
            "pass reason='...' naming the emergency (not the patient)"
        )
    with _derived(lambda base: replace(base, actor=actor, emergency=reason)) as context:
        yield context


@contextmanager
def subject_request(right: str) -> Iterator[AccessContext]:
    """Answer a data subject's request (``right``: ``access``, ``erase`` …) in the block.

    The block keeps the enclosing context (actor, purpose, legal basis) and sees the subject's
    documents whatever their restriction or objections (``AccessContext.subject_request``);
    each record made in it names the right. Used by ``privata_mongo.Rights``.
    """
    with _derived(lambda base: replace(base, subject_request=right)) as context:
        yield context


@contextmanager
def _derived(change: Callable[[AccessContext], AccessContext]) -> Iterator[AccessContext]:
    """The block under ``change`` of the context in force (or of the configured default)."""
    outer = _current.get()
    context = change(outer or current().default_access or AccessContext())
    token = _current.set(context)
    try:
        yield context
    finally:
        try:
            _current.reset(token)
        except ValueError:  # exited in another context: restore anyway
            _current.set(outer)


_regions: ContextVar[tuple[str, ...]] = ContextVar("privata_regions", default=())


@contextmanager
def within_regions(*regions: str) -> Iterator[tuple[str, ...]]:
    """Run a block on the subjects of ``regions`` only (``docs/residency.md``).

    Queries in the block see only the documents of those regions' subjects and touch only
    those regions' identity stores and key vaults; a document created in it is placed in the
    one region named when the resolver does not place it, and refused if the resolver places
    it elsewhere. Example: ``with within_regions("eu"): Patient.objects(email=...)``.
    """
    token = _regions.set(tuple(dict.fromkeys(regions)))
    try:
        yield _regions.get()
    finally:
        try:
            _regions.reset(token)
        except ValueError:  # exited in another context: restore anyway
            _regions.set(())


class PartialResults:
    """What a ``partial_results`` block left out: the regions that could not be reached."""

    __slots__ = ("regions",)

    def __init__(self) -> None:
        self.regions: set[str] = set()

    @property
    def partial(self) -> bool:
        """Whether some result of the block lacks a region's identity data."""
        return bool(self.regions)


_partial: ContextVar[PartialResults | None] = ContextVar("privata_partial", default=None)


@contextmanager
def partial_results() -> Iterator[PartialResults]:
    """Let reads in the block leave out regions that cannot be reached, and say which.

    Without it, a read that needs an unreachable region raises ``RegionUnavailable``. In the
    block, such a read returns the documents of that region's subjects without their
    identity fields (an identity condition matches none of them), and the yielded object's
    ``regions`` names every region left out, so the application can flag the result as
    partial. Writes still fail. Example::

        with partial_results() as partial:
            patients = list(Patient.objects)
        if partial.partial: ...
    """
    made = PartialResults()
    token = _partial.set(made)
    try:
        yield made
    finally:
        try:
            _partial.reset(token)
        except ValueError:  # exited in another context: restore anyway
            _partial.set(None)


@contextmanager
def whole_results() -> Iterator[None]:
    """Let no read in the block leave a region out, even inside ``partial_results``.

    For operations that must be all or nothing whatever the caller allows (an erasure or a
    rectification reading the subject it changes): an unreachable region raises
    ``RegionUnavailable`` in the block.
    """
    token = _partial.set(None)
    try:
        yield
    finally:
        with suppress(ValueError):  # exited in another context: nothing to restore
            _partial.reset(token)


def partial_allowed() -> PartialResults | None:
    """The innermost ``partial_results`` block's record, if any."""
    return _partial.get()


def pinned_regions() -> tuple[str, ...]:
    """The regions the innermost ``within_regions`` block names (``()``: every region)."""
    return _regions.get()


def use_access(context: AccessContext | None) -> None:
    """Set the access context for the rest of the current ``contextvars`` context.

    For integrations that run each request in a context of its own (``copy_context().run``),
    where nothing needs to be restored afterwards; elsewhere use ``access_context``.
    """
    _current.set(context)


def current_access() -> AccessContext | None:
    """The access context set by the innermost ``access_context`` block, if any."""
    return _current.get()


def resolve_access() -> AccessContext:
    """The context an operation starting now is recorded under.

    The innermost ``access_context``; else the configured ``default_access``; else, in
    strict mode (``configure(audit_strict=True)``), an error; else an empty context (the
    record then says that nobody declared who was acting).

    Raises:
        MissingAccessContext: strict mode, and no context and no default.
    """
    context = _current.get()
    if context is not None:
        return context
    settings = current()
    if settings.default_access is not None:
        return settings.default_access
    if settings.audit_strict:
        raise MissingAccessContext(
            "personal data was requested without an access context while strict mode is on; "
            "wrap the call in privata_mongo.access_context(actor=..., purpose=..., "
            "legal_basis=...) or configure a default_access"
        )
    return AccessContext()
