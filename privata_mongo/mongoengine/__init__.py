"""mongoengine, with every model that holds personal data stored split and joined back.

Replace ``mongoengine`` with ``privata_mongo.mongoengine`` in every import: every name of
``mongoengine.__all__`` is here and is mongoengine's own object, except ``connect`` and
``register_connection``, which take the same arguments and inject the privata proxy as the
client. Models, querysets, signals and validation are mongoengine's own code.

Every other attribute (``VERSION``, ``get_version``, ``__version__``) and every submodule is
mongoengine's too: ``privata_mongo.mongoengine.queryset.visitor`` *is*
``mongoengine.queryset.visitor`` (``privata_mongo.facade_modules``). The one exception is
``privata_mongo.mongoengine.connection``, a module of its own that reads everything from
``mongoengine.connection`` but has the facade's ``connect`` and ``register_connection``, so an
application importing them from there goes through the proxy as well; ``mongoengine.connection``
itself is left unchanged.

Mark fields with ``StringField(pii=True)`` (or ``pii=False`` to override a default), list them
in ``meta = {"privacy": {"pii": [...], "not_pii": [...]}}``, or rely on the name defaults; a
marker is an ordinary field keyword that plain mongoengine keeps and ignores.
``privata_mongo.explain(Model)`` tells which rule classified each field.
"""

from __future__ import annotations

from collections.abc import Iterable as _Iterable
from typing import Any as _Any

import mongoengine as _native
from mongoengine import (
    CASCADE,
    DEFAULT_CONNECTION_NAME,
    DEFAULT_DATABASE_NAME,
    DENY,
    DO_NOTHING,
    NULLIFY,
    PULL,
    BinaryField,
    BooleanField,
    BulkWriteError,
    CachedReferenceField,
    ComplexDateTimeField,
    ConnectionFailure,
    DateField,
    DateTimeField,
    Decimal128Field,
    DecimalField,
    DeprecatedError,
    DictField,
    Document,
    DoesNotExist,
    DynamicDocument,
    DynamicEmbeddedDocument,
    DynamicField,
    EmailField,
    EmbeddedDocument,
    EmbeddedDocumentField,
    EmbeddedDocumentListField,
    EnumField,
    FieldDoesNotExist,
    FileField,
    FloatField,
    GenericEmbeddedDocumentField,
    GenericLazyReferenceField,
    GenericReferenceField,
    GeoJsonBaseField,
    GeoPointField,
    GridFSError,
    GridFSProxy,
    ImageField,
    ImageGridFsProxy,
    ImproperlyConfigured,
    IntField,
    InvalidCollectionError,
    InvalidDocumentError,
    InvalidQueryError,
    LazyReferenceField,
    LineStringField,
    ListField,
    LongField,
    LookUpError,
    MapField,
    MapReduceDocument,
    MultiLineStringField,
    MultipleObjectsReturned,
    MultiPointField,
    MultiPolygonField,
    NotRegistered,
    NotUniqueError,
    ObjectIdField,
    OperationError,
    PointField,
    PolygonField,
    Q,
    QueryFieldList,
    QuerySet,
    QuerySetManager,
    QuerySetNoCache,
    ReferenceField,
    SaveConditionError,
    SequenceField,
    SortedListField,
    StringField,
    URLField,
    UUIDField,
    ValidationError,
    disconnect,
    disconnect_all,
    get_connection,
    get_db,
    post_delete,
    post_init,
    post_save,
    pre_delete,
    pre_init,
    pre_save,
    pre_save_post_validation,
    queryset_manager,
)

from privata_mongo.facade_modules import facade_attribute as _facade_attribute
from privata_mongo.facade_modules import install as _install
from privata_mongo.mongoengine._connection import connect, register_connection
from privata_mongo.mongoengine._redact import install as _install_redaction

__all__ = [
    "CASCADE",
    "DEFAULT_CONNECTION_NAME",
    "DEFAULT_DATABASE_NAME",
    "DENY",
    "DO_NOTHING",
    "NULLIFY",
    "PULL",
    "BinaryField",
    "BooleanField",
    "BulkWriteError",
    "CachedReferenceField",
    "ComplexDateTimeField",
    "ConnectionFailure",
    "DateField",
    "DateTimeField",
    "Decimal128Field",
    "DecimalField",
    "DeprecatedError",
    "DictField",
    "Document",
    "DoesNotExist",
    "DynamicDocument",
    "DynamicEmbeddedDocument",
    "DynamicField",
    "EmailField",
    "EmbeddedDocument",
    "EmbeddedDocumentField",
    "EmbeddedDocumentListField",
    "EnumField",
    "FieldDoesNotExist",
    "FileField",
    "FloatField",
    "GenericEmbeddedDocumentField",
    "GenericLazyReferenceField",
    "GenericReferenceField",
    "GeoJsonBaseField",
    "GeoPointField",
    "GridFSError",
    "GridFSProxy",
    "ImageField",
    "ImageGridFsProxy",
    "ImproperlyConfigured",
    "IntField",
    "InvalidCollectionError",
    "InvalidDocumentError",
    "InvalidQueryError",
    "LazyReferenceField",
    "LineStringField",
    "ListField",
    "LongField",
    "LookUpError",
    "MapField",
    "MapReduceDocument",
    "MultiLineStringField",
    "MultiPointField",
    "MultiPolygonField",
    "MultipleObjectsReturned",
    "NotRegistered",
    "NotUniqueError",
    "ObjectIdField",
    "OperationError",
    "PointField",
    "PolygonField",
    "Q",
    "QueryFieldList",
    "QuerySet",
    "QuerySetManager",
    "QuerySetNoCache",
    "ReferenceField",
    "SaveConditionError",
    "SequenceField",
    "SortedListField",
    "StringField",
    "URLField",
    "UUIDField",
    "ValidationError",
    "connect",
    "disconnect",
    "disconnect_all",
    "get_connection",
    "get_db",
    "post_delete",
    "post_init",
    "post_save",
    "pre_delete",
    "pre_init",
    "pre_save",
    "pre_save_post_validation",
    "queryset_manager",
    "register_connection",
]

_install(
    __name__,
    "mongoengine",
    {"connect": connect, "register_connection": register_connection},
    binders=["mongoengine.connection"],
)


def __getattr__(name: str) -> _Any:
    """Every other attribute of ``mongoengine``; a submodule is the facade's counterpart."""
    return _facade_attribute(__name__, _native, name)


def __dir__() -> _Iterable[str]:
    return sorted(set(globals()) | set(dir(_native)))


_install_redaction()  # validation errors of split models never quote identity values
