"""Beanie's revision control through the facade: a stale revision is Beanie's own error."""

from __future__ import annotations

import pytest
from beanie.exceptions import RevisionIdWasChanged

import privata_mongo.beanie as pb


async def test_a_stale_revision_on_save_is_beanies_own_error_on_the_embedded_backend() -> None:
    """As on a server: mongomock names no key in its duplicate-key error, privata does.

    Natively on mongomock Beanie fails with ``AttributeError`` instead (declared as the
    ``duplicate_key_details`` gap of the compat suite).
    """

    class Revised(pb.Document):
        first_name: str
        weight_kg: int = 0

        class Settings:
            name = "facade_revised"
            use_revision = True

    await pb.init_beanie(database=pb.embedded_database("revisions"), document_models=[Revised])
    first = await Revised(first_name="Rev", weight_kg=1).insert()
    other = await Revised.get(first.id)
    assert other is not None
    other.first_name = "Other"
    await other.replace()
    first.weight_kg = 2
    with pytest.raises(RevisionIdWasChanged):
        await first.save()
    stored = await Revised.get(first.id)
    assert stored is not None
    assert (stored.first_name, stored.weight_kg) == ("Other", 1)
    assert await Revised.count() == 1
