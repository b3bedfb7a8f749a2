"""The Beanie facade: the same names as Beanie, the same init signature, split storage."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import beanie
import pytest
from pydantic import Field

import privata_mongo
import privata_mongo.beanie as pb
from privata_mongo import ConfigurationError
from privata_mongo.encryption import unseal_row_async


@pytest.mark.parametrize("name", sorted(set(beanie.__all__) - {"init_beanie"}))
def test_every_beanie_name_is_beanies_own_object(name: str) -> None:
    assert getattr(pb, name) is getattr(beanie, name)


def test_star_import_brings_exactly_beanies_names() -> None:
    assert sorted(pb.__all__) == sorted(beanie.__all__)


def test_init_beanie_takes_beanies_arguments() -> None:
    assert inspect.signature(pb.init_beanie).parameters.keys() == (
        inspect.signature(beanie.init_beanie).parameters.keys()
    )


async def test_init_beanie_validates_its_arguments_as_beanie_does() -> None:
    with pytest.raises(ValueError, match="connection_string parameter or database parameter"):
        await pb.init_beanie(document_models=[])
    with pytest.raises(ValueError, match="document_models parameter must be set"):
        await pb.init_beanie(database=pb.embedded_database("x"))


def _models() -> Any:
    class Person(pb.Document):
        first_name: str
        email: Annotated[str, pb.Indexed(unique=True)]
        alias: Annotated[str | None, pb.PII()] = None
        phone: Annotated[str | None, pb.PII(False)] = None
        mrn: str | None = Field(default=None, json_schema_extra={"pii": True})
        ward: str = "A"

        class Settings:
            name = "facade_people"
            privacy = {"scan_limit": 50}

    return Person


def test_markers_and_settings_classify_fields() -> None:
    Person = _models()
    explained = privata_mongo.explain(Person)
    assert explained.identity_collection == "facade_people__identity"
    assert explained.identity_fields == ("first_name", "email", "alias", "mrn")
    rules = {d.attribute: d.rule.value for d in explained.decisions}
    assert rules["alias"] == rules["phone"] == rules["mrn"] == "field marker"
    assert rules["ward"] == "no rule applies"


def test_non_boolean_marker_is_refused() -> None:
    class Bad(pb.Document):
        note: str = Field(default="", json_schema_extra={"pii": "yes"})

    with pytest.raises(ConfigurationError, match="must be a bool"):
        privata_mongo.explain(Bad)


async def test_documents_are_split_on_the_embedded_backend() -> None:
    Person = _models()
    database = pb.embedded_database("facade")
    await pb.init_beanie(database=database, document_models=[Person])
    await Person(first_name="Ada", email="ada@x.org", alias="AL", phone="+1", ward="B").insert()
    (clinical,) = await database["facade_people"].find({}).to_list()
    (identity,) = await database["facade_people__identity"].find({}).to_list()
    assert set(clinical) == {"_id", "phone", "ward", "_pseudonym"}
    assert "email" not in identity
    plain = await unseal_row_async(database, identity)
    assert (plain["email"], plain["alias"]) == ("ada@x.org", "AL")
    found = await Person.find_one(Person.email == "ada@x.org")
    assert found is not None
    assert (found.first_name, found.ward, found.phone) == ("Ada", "B", "+1")


async def test_a_projection_without_identity_fields_never_reads_the_identity_collection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``project(Model)`` excluding identity fields reads no identity row; naming one does."""
    from pydantic import BaseModel

    from privata_mongo.embedded import AsyncMockCollection

    Person = _models()

    class WardOnly(BaseModel):
        ward: str

    class NameAndWard(BaseModel):
        first_name: str
        ward: str

    reads: list[str] = []
    for name in ("find", "aggregate", "count_documents", "distinct"):
        original = getattr(AsyncMockCollection, name)

        def spy(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            reads.append(self.name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(AsyncMockCollection, name, spy)
    database = pb.embedded_database("projection")
    await pb.init_beanie(database=database, document_models=[Person])
    await Person(first_name="Ada", email="ada@x.org", ward="B").insert()
    await Person(first_name="Alan", email="alan@x.org", ward="C").insert()

    reads.clear()
    wards = await Person.find(Person.ward != "A").sort("ward").project(WardOnly).to_list()
    assert [w.ward for w in wards] == ["B", "C"]
    assert reads
    assert "facade_people__identity" not in reads

    reads.clear()
    named = await Person.find(Person.ward != "A").sort("ward").project(NameAndWard).to_list()
    assert [n.first_name for n in named] == ["Ada", "Alan"]
    assert "facade_people__identity" in reads


async def test_a_model_with_an_email_str_field_works_through_the_facade() -> None:
    """``EmailStr`` needs email-validator, which the ``beanie`` extra brings (pydantic[email])."""
    from pydantic import EmailStr, ValidationError

    class Contact(pb.Document):
        first_name: str
        email: EmailStr
        ward: str = "A"

        class Settings:
            name = "facade_contacts"

    with pytest.raises(ValidationError, match="email"):
        Contact(first_name="Ada", email="not an address")
    database = pb.embedded_database("email_str")
    await pb.init_beanie(database=database, document_models=[Contact])
    await Contact(first_name="Ada", email="Ada@Example.ORG").insert()
    found = await Contact.find_one(Contact.ward == "A")
    assert found is not None
    assert found.email == "Ada@example.org"  # email-validator normalises the domain
    (clinical,) = await database["facade_contacts"].find({}).to_list()
    assert "email" not in clinical
    # once split, its errors are redacted: email-validator's reason stays, the value goes
    with pytest.raises(ValidationError) as caught:
        Contact(first_name="Ada", email="ada.bad@@example.org")
    ((error,),) = [caught.value.errors()]
    assert (error["loc"], error["type"]) == (("email",), "value_error")
    assert "valid email address" in error["msg"]
    assert "ada.bad" not in str(caught.value)


def test_the_beanie_extra_brings_pydantics_email_extra() -> None:
    """What Beanie models commonly declare (``EmailStr``, ``NameEmail``) installs with it."""
    from pathlib import Path

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extra = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]["beanie"]
    pydantic = [r for r in extra if r.replace(" ", "").startswith("pydantic[")]
    assert pydantic, extra
    extras = pydantic[0].partition("[")[2].partition("]")[0].split(",")
    assert {"email", "timezone"} <= {e.strip() for e in extras}
