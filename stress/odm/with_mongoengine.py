"""Native and wrapped mongoengine: the same model definitions, connected either way."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import mongoengine as me
import mongomock

from stress.odm.base import Alternative


def _mongoengine_models(prefix: str, alias: str) -> tuple[Any, Any, Any]:
    fields = {
        "first_name": lambda: me.StringField(),
        "last_name": lambda: me.StringField(),
        "email": lambda: me.StringField(searchable=True),
        "date_of_birth": lambda: me.DateTimeField(),
        "blood_type": lambda: me.StringField(),
        "visits": lambda: me.IntField(),
        "notes": lambda: me.StringField(),
    }

    def model(name: str, collection: str, extra: dict[str, Any]) -> Any:
        attrs = {k: make() for k, make in fields.items()}
        attrs.update(extra)
        attrs["meta"] = {"db_alias": alias, "collection": collection}
        return type(f"{prefix}{name}", (me.Document,), attrs)

    patient = model("Patient", "patient", {})
    large = model("LargePatient", "large_patient", {"readings": me.ListField(me.FloatField())})
    visit = type(
        f"{prefix}Visit",
        (me.Document,),
        {
            "patient": me.ReferenceField(patient),
            "reason": me.StringField(),
            "meta": {"db_alias": alias, "collection": "visit"},
        },
    )
    return patient, large, visit


class MongoengineAlternative(Alternative):
    name = "mongoengine"
    family = "mongoengine"

    def _connect(self) -> Callable[..., Any]:
        return me.connect

    def open(self) -> None:
        self.alias = f"alias_{self.db_name}"
        if self.backend.embedded:
            inner = functools.partial(mongomock.MongoClient, _store=self.store)
            self._connect()(
                self.db_name,
                alias=self.alias,
                mongo_client_class=inner,
                uuidRepresentation="standard",
            )
        else:
            self._connect()(
                self.db_name,
                alias=self.alias,
                host=self.backend.uri,
                uuidRepresentation="standard",
                event_listeners=[self.listener],
            )
        prefix = "W" if self.wrapped else "N"
        self.Patient, self.Large, self.Visit = _mongoengine_models(prefix, self.alias)

    def close(self) -> None:
        if not self.backend.embedded:
            me.get_connection(self.alias).drop_database(self.db_name)
        me.disconnect(self.alias)

    def forget(self) -> None:
        if self.wrapped:
            from privata_mongo.encryption import forget_keys

            forget_keys()

    def reset(self) -> None:
        for model in (self.Patient, self.Large, self.Visit):
            model.drop_collection()

    def seed(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> list[Any]:
        model = self.Large if large else self.Patient
        return [d.id for d in model.objects.insert([model(**d) for d in documents])]

    def seed_visits(self, patient_ids: Sequence[Any], count: int) -> None:
        patients = list(self.Patient.objects(id__in=list(patient_ids)))
        self.Visit.objects.insert(
            [self.Visit(patient=patients[i % len(patients)], reason="check") for i in range(count)]
        )

    def create(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> None:
        model = self.Large if large else self.Patient
        for document in documents:
            model(**document).save()

    def get(self, ids: Sequence[Any]) -> None:
        for i in ids:
            self.Patient.objects.get(id=i)

    def find_email(self, emails: Sequence[str]) -> None:
        for email in emails:
            self.Patient.objects.get(email=email)

    def list(self, count: int, repeat: int) -> None:
        for _ in range(repeat):
            list(self.Patient.objects[:count])

    def clinical(self, ids: Sequence[Any]) -> None:
        for i in ids:
            self.Patient.objects(id=i).only("blood_type", "visits").first()

    def update_clinical(self, ids: Sequence[Any], *, large: bool = False) -> None:
        model = self.Large if large else self.Patient
        for n, i in enumerate(ids):
            model.objects(id=i).update_one(set__visits=n)

    def update_identity(self, ids: Sequence[Any]) -> None:
        for n, i in enumerate(ids):
            self.Patient.objects(id=i).update_one(set__last_name=f"Renamed{n}")

    def related(self, count: int, repeat: int) -> None:
        for _ in range(repeat):
            for visit in self.Visit.objects[:count].select_related():
                assert visit.patient.blood_type

    def create_large(self, documents: Sequence[dict[str, Any]]) -> None:
        self.create(documents, large=True)

    def update_large(self, ids: Sequence[Any]) -> None:
        self.update_clinical(ids, large=True)


class WrappedMongoengineAlternative(MongoengineAlternative):
    name = "privata.mongoengine"
    wrapped = True

    def _connect(self) -> Callable[..., Any]:
        import privata_mongo.mongoengine as pm

        return pm.connect
