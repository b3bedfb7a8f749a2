"""The audit chain key: read from the key vault, made there once, derived from its data key."""

from __future__ import annotations

import os

import pytest

from privata_mongo.core.crypto import KEY_CHECK_NAME, KeyRing
from privata_mongo.core.crypto.chain_key import CHAIN_KEY_NAME, chain_key, chain_key_name
from privata_mongo.core.ops import LoadKeys, StoreKeys
from privata_mongo.errors import ConfigurationError, KeyUnavailable
from privata_mongo.testing import ScriptedDriver


def _ring(master: bytes) -> KeyRing:
    return KeyRing({"local": {"key": master}}, clock=lambda: 0.0)


def _key_document(ring: KeyRing, name: str) -> dict[str, object]:
    made: dict[str, object] = ScriptedDriver([]).run(ring.new_key(name))
    return made


MASTER = os.urandom(96)


def test_an_empty_vault_gives_no_key_unless_asked_to_make_one() -> None:
    driver = ScriptedDriver([(LoadKeys, [])])
    assert driver.run(chain_key(_ring(MASTER), create=False)) is None
    assert [type(op) for op in driver.seen] == [LoadKeys]


def test_the_stored_key_gives_the_same_secret_to_every_ring_with_the_master_key() -> None:
    stored = _key_document(_ring(MASTER), CHAIN_KEY_NAME)
    secrets = {
        ScriptedDriver([(LoadKeys, [stored])]).run(chain_key(_ring(MASTER), create=True))
        for _ in range(2)
    }
    (secret,) = secrets
    assert isinstance(secret, bytes)
    assert len(secret) == 32
    with pytest.raises(KeyUnavailable):  # another master key cannot unwrap it
        ScriptedDriver([(LoadKeys, [stored])]).run(chain_key(_ring(os.urandom(96)), create=True))


def test_the_key_is_made_once_and_the_stored_one_wins_a_race() -> None:
    theirs = _key_document(_ring(MASTER), CHAIN_KEY_NAME)  # another process stored it first
    driver = ScriptedDriver(
        [(LoadKeys, []), (LoadKeys, []), (StoreKeys, None), (LoadKeys, [theirs])]
    )
    secret = driver.run(chain_key(_ring(MASTER), create=True))
    assert [type(op) for op in driver.seen] == [LoadKeys, LoadKeys, StoreKeys, LoadKeys]
    assert driver.seen[1] == LoadKeys((KEY_CHECK_NAME,))
    expected = ScriptedDriver([(LoadKeys, [theirs])]).run(chain_key(_ring(MASTER), create=True))
    assert secret == expected


def test_no_key_is_made_under_a_master_key_the_vault_does_not_know() -> None:
    check = _key_document(_ring(MASTER), KEY_CHECK_NAME)
    driver = ScriptedDriver([(LoadKeys, []), (LoadKeys, [check])])
    with pytest.raises(ConfigurationError, match="master key"):
        driver.run(chain_key(_ring(os.urandom(96)), create=True))
    assert not any(isinstance(op, StoreKeys) for op in driver.seen)


def test_each_audit_destination_has_a_key_of_its_own() -> None:
    ring = _ring(MASTER)
    secrets = []
    for destination in ("clinic.privata_audit", "billing.privata_audit"):
        name = chain_key_name(destination)
        stored = _key_document(ring, name)
        driver = ScriptedDriver([(LoadKeys, [stored])])
        secrets.append(driver.run(chain_key(ring, create=False, destination=destination)))
        assert driver.seen == [LoadKeys((f"privata:audit-chain:{destination}",))]
    assert secrets[0] != secrets[1]


def test_chain_keys_are_never_shredded() -> None:
    from privata_mongo.core.crypto import keys
    from privata_mongo.core.ops import ShredKeys

    names = [chain_key_name("clinic.privata_audit"), CHAIN_KEY_NAME, "pseu_" + "a" * 32]
    driver = ScriptedDriver([(ShredKeys, 1)])
    assert driver.run(keys.shred(None, names)) == 1
    assert driver.seen == [ShredKeys(("pseu_" + "a" * 32,))]
