"""Which errors prove a write was not applied; others leave its fate to the read-back and sweep."""

from __future__ import annotations

import pytest
from bson.errors import InvalidDocument
from pymongo.errors import (
    AutoReconnect,
    BulkWriteError,
    DocumentTooLarge,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    NotPrimaryError,
    OperationFailure,
    ServerSelectionTimeoutError,
    WriteConcernError,
    WriteError,
)

from privata_mongo.adapters.pymongo_calls import refused
from privata_mongo.core.failures import WriteFailed


@pytest.mark.parametrize(
    "error",
    [
        OperationFailure("bad", 2),
        WriteError("$-prefixed field", 52),
        DuplicateKeyError("E11000", 11000),
        InvalidDocument("key must not start with '$'"),
        DocumentTooLarge("too large"),
        WriteFailed("too large", 17419),
    ],
)
def test_an_error_the_server_or_driver_answered_proves_the_write_was_refused(
    error: BaseException,
) -> None:
    assert refused(error)


@pytest.mark.parametrize(
    "error",
    [
        AutoReconnect("reset"),
        NetworkTimeout("timed out"),
        ServerSelectionTimeoutError("no server"),
        NotPrimaryError("stepped down"),
        WriteConcernError("wtimeout", 64),
        ExecutionTimeout("time limit", 50),
        BulkWriteError({"writeErrors": [], "nInserted": 1}),
        ConnectionError("socket"),
        RuntimeError("anything else"),
    ],
)
def test_any_other_error_leaves_the_write_s_fate_unknown(error: BaseException) -> None:
    assert not refused(error)
