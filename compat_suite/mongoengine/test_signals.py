"""Signals: receivers see the same documents, values and flags, in the same order."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from mongoengine import signals

from compat_suite.harness import scenario
from compat_suite.mongoengine.models import Clinic, clinic, seed_clinic

_DOCUMENT_SIGNALS = (
    "pre_init",
    "post_init",
    "pre_save",
    "pre_save_post_validation",
    "post_save",
    "pre_delete",
    "post_delete",
)
_BULK_SIGNALS = ("pre_bulk_insert", "post_bulk_insert")


def _seen(document: Any) -> Any:
    if isinstance(document, list):
        return [_seen(d) for d in document]
    if not hasattr(document, "_data"):
        return repr(type(document).__name__)
    return {
        "pk": document.pk,
        "first_name": document._data.get("first_name"),
        "email": document._data.get("email"),
        "weight_kg": document._data.get("weight_kg"),
        "city": document.address.city if document._data.get("address") else None,
    }


def _plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value if isinstance(value, bool | int | str | type(None)) else type(value).__name__
        for key, value in sorted(kwargs.items())
    }


class _Log:
    """Receivers that record what each signal carried (kept alive by the scenario)."""

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self.receivers: dict[str, Callable[..., None]] = {}

    def receiver(self, name: str) -> Callable[..., None]:
        def receive(sender: Any, **kwargs: Any) -> None:
            document = kwargs.pop("document", kwargs.pop("documents", None))
            values = kwargs.pop("values", None)
            self.entries.append(
                {
                    "signal": name,
                    "sender": sender.__name__,
                    "document": _seen(document),
                    "init_values": sorted(values) if values is not None else None,
                    "kwargs": _plain_kwargs(kwargs),
                }
            )

        self.receivers[name] = receive
        return receive

    def take(self) -> list[Any]:
        entries, self.entries = self.entries, []
        return entries


def _connect(me: ModuleType, log: _Log, sender: Any) -> None:
    for name in _DOCUMENT_SIGNALS:
        getattr(me, name).connect(log.receiver(name), sender=sender)
    for name in _BULK_SIGNALS:
        getattr(signals, name).connect(log.receiver(name), sender=sender)


@scenario(clinic)
def test_signals_on_save_update_delete(me: ModuleType, m: Clinic) -> dict[str, Any]:
    seed_clinic(m)
    log = _Log()
    _connect(me, log, m.Patient)
    observed: dict[str, Any] = {}
    patient = m.Patient(
        first_name="Sig", last_name="Nal", email="sig@example.org", address=m.Address(city="X")
    )
    observed["construct"] = log.take()
    patient.save()
    observed["save_new"] = log.take()
    patient.weight_kg = 77
    patient.email = "signal@example.org"
    patient.save()
    observed["save_existing"] = log.take()
    loaded = m.Patient.objects.get(email="signal@example.org")
    observed["load"] = log.take()
    loaded.delete()
    observed["delete_document"] = log.take()
    m.Patient.objects(weight_kg=70).delete()
    observed["delete_queryset"] = log.take()
    m.Patient.objects(first_name="Ada").update(set__weight_kg=1)
    observed["queryset_update_sends_nothing"] = log.take()
    return observed


@scenario(clinic)
def test_signals_on_bulk_insert(me: ModuleType, m: Clinic) -> dict[str, Any]:
    log = _Log()
    _connect(me, log, m.Patient)
    observed: dict[str, Any] = {}
    people = [
        m.Patient(first_name=f"B{i}", last_name="Ulk", email=f"b{i}@example.org", weight_kg=i)
        for i in range(3)
    ]
    log.take()
    m.Patient.objects.insert(people)
    observed["insert_load_bulk"] = log.take()
    m.Patient.objects.insert(
        [m.Patient(first_name="C", last_name="Ulk", email="c@example.org")], load_bulk=False
    )
    observed["insert_ids_only"] = log.take()
    m.Patient.objects.insert(m.Patient(first_name="D", last_name="Ulk", email="d@example.org"))
    observed["insert_single"] = log.take()[1:]  # [0] is the constructor's pre/post_init
    return observed


@scenario(clinic)
def test_receivers_that_change_documents(me: ModuleType, m: Clinic) -> dict[str, Any]:
    def lowercase_email(sender: Any, document: Any, **kwargs: Any) -> None:
        if document.email:
            document.email = document.email.lower()
        document.tags = [*document.tags, "seen"]

    def stamp_on_init(sender: Any, document: Any, **kwargs: Any) -> None:
        document._initialised_with = sorted(document._data)

    me.pre_save.connect(lowercase_email, sender=m.Patient)
    me.post_init.connect(stamp_on_init, sender=m.Patient)
    patient = m.Patient(first_name="Up", last_name="Per", email="UPPER@Example.ORG").save()
    loaded = m.Patient.objects.get(pk=patient.pk)
    return {
        "in_memory": (patient.email, list(patient.tags)),
        "stored": m.Patient.objects.as_pymongo().get(pk=patient.pk)["email"],
        "found_by_lowercase": m.Patient.objects(email="upper@example.org").count(),
        "init_saw": loaded._initialised_with,
        "tags": list(loaded.tags),
    }
