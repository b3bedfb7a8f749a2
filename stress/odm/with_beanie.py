"""Native and wrapped Beanie: every class defined before either ``init_beanie`` runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import pymongo

from stress.odm.base import LOOP, Alternative


def _beanie_models(odm: Any, prefix: str) -> tuple[Any, Any, Any]:
    from beanie import PydanticObjectId
    from pydantic import Field

    from privata_mongo.beanie import PII

    class Patient(odm.Document):  # type: ignore[misc]
        first_name: str
        last_name: str
        email: Annotated[str, PII(searchable=True)]
        date_of_birth: Any = None
        blood_type: str | None = None
        visits: int = 0
        notes: str | None = None

        class Settings:
            name = "patient"

    class LargePatient(Patient):
        readings: list[float] = Field(default_factory=list)

        class Settings:
            name = "large_patient"

    # Not ``Link[Patient]``: FerretDB v1.24 stores no DBRef ("invalid key: $ref") and has no
    # $lookup, and mongomock 4.3 does not follow DBRef paths (compat_suite/requirements.py),
    # so on both backends a Beanie application keeps the id and joins with a second query.
    class Visit(odm.Document):  # type: ignore[misc]
        patient_id: PydanticObjectId
        reason: str | None = None

        class Settings:
            name = "visit"

    for cls in (Patient, LargePatient, Visit):
        cls.__name__ = cls.__qualname__ = f"{prefix}{cls.__name__}"
    return Patient, LargePatient, Visit


class ClinicalView:
    """Beanie's projection model of the clinical fields (built once per run)."""

    model: Any = None

    @classmethod
    def get(cls) -> Any:
        if cls.model is None:
            from pydantic import BaseModel

            class Clinical(BaseModel):
                blood_type: str | None = None
                visits: int = 0

            cls.model = Clinical
        return cls.model


class BeanieAlternative(Alternative):
    name = "beanie"
    family = "beanie"

    def _odm(self) -> Any:
        import beanie

        return beanie

    def define(self) -> None:
        """Define the classes (every alternative's, before any ``init_beanie``)."""
        self.Patient, self.Large, self.Visit = _beanie_models(
            self._odm(), "W" if self.wrapped else "N"
        )

    def _run(self, coroutine: Any) -> Any:
        return LOOP.run_until_complete(coroutine)

    def open(self) -> None:
        if self.backend.embedded:
            from privata_mongo.embedded import AsyncMockClient

            self.client: Any = AsyncMockClient(self.store)
        else:
            self.client = pymongo.AsyncMongoClient(
                self.backend.uri, uuidRepresentation="standard", event_listeners=[self.listener]
            )
        self.database = self.client[self.db_name]
        self._run(
            self._odm().init_beanie(
                database=self.database, document_models=[self.Patient, self.Large, self.Visit]
            )
        )

    def close(self) -> None:
        async def close() -> None:
            if not self.backend.embedded:
                await self.client.drop_database(self.db_name)
            await self.client.close()

        self._run(close())

    def forget(self) -> None:
        if self.wrapped:
            from privata_mongo.encryption import forget_keys

            forget_keys()

    def reset(self) -> None:
        async def reset() -> None:
            for model in (self.Patient, self.Large, self.Visit):
                await model.delete_all()

        self._run(reset())

    def seed(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> list[Any]:
        model = self.Large if large else self.Patient

        async def seed() -> list[Any]:
            models = [model(**d) for d in documents]
            await model.insert_many(models)
            return [m.id for m in await model.find_all().to_list()]

        return list(self._run(seed()))

    def seed_visits(self, patient_ids: Sequence[Any], count: int) -> None:
        async def seed() -> None:
            ids = list(patient_ids)
            await self.Visit.insert_many(
                [self.Visit(patient_id=ids[i % len(ids)], reason="check") for i in range(count)]
            )

        self._run(seed())

    def create(self, documents: Sequence[dict[str, Any]], *, large: bool = False) -> None:
        model = self.Large if large else self.Patient

        async def create() -> None:
            for document in documents:
                await model(**document).insert()

        self._run(create())

    def get(self, ids: Sequence[Any]) -> None:
        async def get() -> None:
            for i in ids:
                assert await self.Patient.get(i) is not None

        self._run(get())

    def find_email(self, emails: Sequence[str]) -> None:
        async def find() -> None:
            for email in emails:
                assert await self.Patient.find_one(self.Patient.email == email) is not None

        self._run(find())

    def list(self, count: int, repeat: int) -> None:
        async def listing() -> None:
            for _ in range(repeat):
                await self.Patient.find_all(limit=count).to_list()

        self._run(listing())

    def clinical(self, ids: Sequence[Any]) -> None:
        view = ClinicalView.get()

        async def clinical() -> None:
            for i in ids:
                await self.Patient.find_one(self.Patient.id == i, projection_model=view)

        self._run(clinical())

    def update_clinical(self, ids: Sequence[Any], *, large: bool = False) -> None:
        from beanie.operators import Set

        model = self.Large if large else self.Patient

        async def update() -> None:
            for n, i in enumerate(ids):
                await model.find_one(model.id == i).update(Set({model.visits: n}))

        self._run(update())

    def update_identity(self, ids: Sequence[Any]) -> None:
        from beanie.operators import Set

        async def update() -> None:
            for n, i in enumerate(ids):
                await self.Patient.find_one(self.Patient.id == i).update(
                    Set({self.Patient.last_name: f"Renamed{n}"})
                )

        self._run(update())

    def related(self, count: int, repeat: int) -> None:
        from beanie.operators import In

        async def joined() -> None:  # see ``_beanie_models``: no Link on these backends
            for _ in range(repeat):
                visits = await self.Visit.find_all(limit=count).to_list()
                ids = list({visit.patient_id for visit in visits})
                patients = await self.Patient.find(In(self.Patient.id, ids)).to_list()
                by_id = {patient.id: patient for patient in patients}
                assert all(by_id[visit.patient_id].blood_type for visit in visits)

        self._run(joined())

    def create_large(self, documents: Sequence[dict[str, Any]]) -> None:
        self.create(documents, large=True)

    def update_large(self, ids: Sequence[Any]) -> None:
        self.update_clinical(ids, large=True)


class WrappedBeanieAlternative(BeanieAlternative):
    name = "privata.beanie"
    wrapped = True

    def _odm(self) -> Any:
        import privata_mongo.beanie as pb

        return pb
