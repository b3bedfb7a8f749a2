"""Iterating every document holds one batch's keys at a time, whatever the ring's size.

With a ring smaller than a batch, a stream holds the keys of the batch it is joining (the
rows are opened right after their keys are loaded, so none may be evicted meanwhile) and lets
go of them when it hands the batch over; the next batch's keys then push them out. So the keys
held never exceed one batch, however many documents are read, on both facades and backends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import mongoengine as me
import pytest

import privata_mongo
import privata_mongo.beanie as pb
import privata_mongo.config
import privata_mongo.mongoengine as pm
from privata_mongo.encryption import forget_keys
from privata_mongo.runtime.keys import held_everywhere
from testkit.backends import Backend, beanie_database

DOCUMENTS = 45
BATCH = 10
SIZE = 3


@pytest.fixture
def small_ring() -> Iterator[None]:
    saved = privata_mongo.config.current()
    privata_mongo.configure(key_cache_size=SIZE)
    try:
        yield
    finally:
        privata_mongo.config._current = saved


def test_a_mongoengine_iteration_holds_one_batch_of_keys(
    backend: Backend, small_ring: None
) -> None:
    pm.connect(backend.db_name, alias="kb", **backend.mongoengine_settings())
    try:

        class Member(me.Document):
            email = me.StringField()
            n = me.IntField()
            meta = {"collection": "kb_member", "db_alias": "kb"}

        Member.objects.insert([Member(email=f"m{i}@x.org", n=i) for i in range(DOCUMENTS)])
        forget_keys()
        seen: list[str] = []
        most = 0
        for member in Member.objects.order_by("n").no_cache().batch_size(BATCH):
            seen.append(member.email)
            most = max(most, held_everywhere())
        assert seen == [f"m{i}@x.org" for i in range(DOCUMENTS)]
        assert SIZE < most <= BATCH  # a whole batch while it is joined, never more
        Member.drop_collection()
    finally:
        me.disconnect("kb")


async def test_a_beanie_iteration_holds_one_batch_of_keys(
    backend: Backend, small_ring: None
) -> None:
    class Member(pb.Document):
        email: Annotated[str, pb.PII()]
        n: int

        class Settings:
            name = "kb_member_beanie"

    async with beanie_database(backend) as database:
        await pb.init_beanie(database=database, document_models=[Member])
        await Member.insert_many([Member(email=f"m{i}@x.org", n=i) for i in range(DOCUMENTS)])
        forget_keys()
        seen: list[str] = []
        most = 0
        members: Any = Member.find_all(sort="+n", batch_size=BATCH)
        async for member in members:
            seen.append(member.email)
            most = max(most, held_everywhere())
        assert seen == [f"m{i}@x.org" for i in range(DOCUMENTS)]
        assert SIZE < most <= BATCH
