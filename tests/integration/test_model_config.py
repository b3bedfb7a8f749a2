"""A model's privacy configuration error is raised on that model, never on another one.

Both facades: an explicit identity marker on a primary key is refused with the field and the
remedy when the model is used or explained; other models, a listing of the collections and a
later ``init_beanie`` without it keep working.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.mongoengine as pm
from privata_mongo import ConfigurationError

REMEDY = "surrogate primary key"


def test_mongoengine_misdeclared_key_fails_only_on_its_model(connected: Any) -> None:
    class KeyedByCode(pm.Document):
        code = pm.StringField(primary_key=True, pii=True)
        note = pm.StringField()

    class Listed(pm.Document):
        email = pm.StringField(primary_key=True)
        meta = {"privacy": {"pii": ["email"]}}

    class Visitor(pm.Document):
        first_name = pm.StringField()
        ward = pm.StringField()
        badge = pm.CachedReferenceField(KeyedByCode, fields=["note"])

    connected["keyed_by_code"].insert_one({"_id": "c1"})
    connected["listed"].insert_one({"_id": "a@example.org"})
    Visitor(first_name="Ada", ward="B").save()
    assert [v.ward for v in Visitor.objects(first_name="Ada")] == ["B"]
    names = Visitor._get_db().list_collection_names()
    assert {"keyed_by_code", "listed", "visitor"} <= set(names)
    assert "visitor__identity" not in names
    for model, field, declared in ((KeyedByCode, "code", "pii=True"), (Listed, "email", "'pii'")):
        for use in (lambda m=model: m(pk="x").save(), lambda m=model: privata_mongo.explain(m)):
            with pytest.raises(ConfigurationError) as raised:
                use()
            message = str(raised.value)
            assert f"{model.__name__}.{field}" in message
            assert REMEDY in message
            assert declared in message
    assert Visitor.objects.count() == 1
    # A copy of the misdeclared model's fields is kept identity data until it is fixed.
    assert privata_mongo.explain(Visitor).identity_fields == ("first_name", "badge")


async def test_beanie_misdeclared_key_fails_only_on_its_model() -> None:
    class MarkedKey(pb.Document):
        id: Annotated[str, pb.PII()]  # type: ignore[assignment]
        note: str = ""

    class ListedKey(pb.Document):
        id: str = Field()  # type: ignore[assignment]

        class Settings:
            privacy = {"pii": ["id"]}

    class Caller(pb.Document):
        first_name: str
        ward: str = "A"

    for model, declared in ((MarkedKey, "pii=True"), (ListedKey, "'pii'")):
        with pytest.raises(ConfigurationError) as raised:
            privata_mongo.explain(model)
        assert f"{model.__name__}.id" in str(raised.value)
        assert REMEDY in str(raised.value)
        assert declared in str(raised.value)

    database = pb.embedded_database("model_config")
    with pytest.raises(ConfigurationError, match=r"MarkedKey\.id"):
        await pb.init_beanie(database=database, document_models=[MarkedKey])
    database.inner["MarkedKey"].insert_one({"_id": "m1"})  # the sync store underneath
    await pb.init_beanie(database=database, document_models=[Caller])
    await Caller(first_name="Grace", ward="C").insert()
    found = await Caller.find_one(Caller.first_name == "Grace")
    assert found is not None
    assert found.ward == "C"
    names = await Caller.get_pymongo_collection().database.list_collection_names()
    assert {"MarkedKey", "Caller"} <= set(names)
    assert "Caller__identity" not in names
