"""Internal. Implementations of the ports over pymongo-shaped clients (pymongo, mongomock)."""
