"""The data maps printed in docs/rights.md are what ``data_map()`` prints for the same models.

Both are generated here: a mongoengine app with a reference chain three levels deep below the
patient (encounters, their observations, attachments of those), and the FastAPI example's
Beanie models. A change to how a map is described, or to the example's models, fails this test
until the documentation says the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import privata_mongo.mongoengine as pm
from examples.fastapi_app.models import Patient, Visit
from privata_mongo import AsyncRights, Rights

DOC = Path(__file__).resolve().parents[2] / "docs" / "rights.md"


def _printed(after: str) -> str:
    """The first code block of docs/rights.md following the paragraph containing ``after``."""
    text = DOC.read_text()
    start = text.index(after)
    found = re.search(r"```\n(.*?)```", text[start:], re.DOTALL)
    assert found is not None, f"no code block after {after!r} in {DOC.name}"
    return found.group(1).rstrip("\n")


def _chain() -> list[Any]:
    class Clinic(pm.Document):
        name = pm.StringField()

    class Patient(pm.Document):
        first_name = pm.StringField()
        email = pm.EmailField(searchable=True)
        clinic = pm.ReferenceField(Clinic)

    class Encounter(pm.Document):
        patient = pm.ReferenceField(Patient)
        reason = pm.StringField()

    class Observation(pm.Document):
        encounter = pm.CachedReferenceField(Encounter, fields=["reason"])
        code = pm.StringField()

    class Attachment(pm.Document):
        observations = pm.ListField(pm.ReferenceField(Observation))
        about = pm.GenericReferenceField()

    return [Attachment, Clinic, Encounter, Observation, Patient]


def test_the_three_level_chain_is_printed_as_documented() -> None:
    printed = str(Rights(_chain()).data_map())
    assert printed == _printed("reference chain three levels deep")


def test_the_fastapi_example_is_printed_as_documented() -> None:
    printed = str(AsyncRights([Patient, Visit]).data_map())
    assert printed == _printed("and of the FastAPI example")
