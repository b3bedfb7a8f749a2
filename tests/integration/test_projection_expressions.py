"""Find projections that compute identity fields from expressions, as MongoDB 4.4+ does.

Identity rows are projected in the process after they are unsealed; a computed field there
reads the row as ``$$CURRENT``/``$$ROOT``. The fuzz run found ``{"phone": "$literal"}``
raising ``KeyError('CURRENT')`` instead: the projection ran with no variable bound. The
expected documents are MongoDB's: a field path reads the document's field, a missing path
leaves the computed field out.
"""

from __future__ import annotations

from typing import Any

import pytest

import privata_mongo.mongoengine as pm
from privata_mongo.errors import UnsupportedQuery


def _model() -> Any:
    class ProjectedPatient(pm.Document):
        first_name = pm.StringField()
        surname = pm.ListField(pm.StringField())
        phone = pm.StringField()
        diagnosis = pm.StringField()
        meta = {"collection": "projected_patient"}

    return ProjectedPatient


@pytest.mark.parametrize(
    ("projection", "expected"),
    [
        ({"phone": "$first_name"}, {"phone": "Ada"}),
        ({"phone": "$$ROOT.first_name"}, {"phone": "Ada"}),
        ({"phone": "$literal"}, {}),
        # the fuzz input, less the internal link field
        (
            {"phone": "$literal", "surname": {"$elemMatch": {"$gt": "K"}}},
            {"surname": ["Lovelace"]},
        ),
    ],
)
@pytest.mark.usefixtures("connected")
def test_a_computed_identity_field_reads_the_identity_row(
    projection: dict[str, Any], expected: dict[str, Any]
) -> None:
    Patient = _model()
    ada = Patient(
        first_name="Ada", surname=["Byron", "Lovelace"], phone="555-0100", diagnosis="flu"
    ).save()
    (found,) = Patient._get_collection().find({}, projection)
    assert found == {"_id": ada.id, **expected}


@pytest.mark.parametrize(
    ("projection", "field"),
    [
        ({"phone": "$diagnosis"}, "phone"),  # an identity field computed from a clinical one
        ({"summary": "$first_name"}, "summary"),  # a clinical output reading an identity field
        ({"summary": {"$concat": ["$diagnosis", "$phone"]}}, "summary"),  # reads both sides
        ({"phone": {"$toUpper": "$$ROOT.diagnosis"}}, "phone"),
    ],
)
@pytest.mark.usefixtures("connected")
def test_a_computed_field_reading_across_the_split_is_refused(
    projection: dict[str, Any], field: str
) -> None:
    """MongoDB reads the whole document; each half here sees only its own fields.

    Computing from the missing half would silently drop the field (or compute from nothing),
    so the projection is refused before anything is read, naming fields, never values.
    """
    Patient = _model()
    Patient(first_name="Ada", phone="555-0100", diagnosis="flu").save()
    with pytest.raises(UnsupportedQuery) as refused:
        list(Patient._get_collection().find({}, projection))
    assert refused.value.field == field
    assert "Ada" not in str(refused.value)
    assert "555" not in str(refused.value)
