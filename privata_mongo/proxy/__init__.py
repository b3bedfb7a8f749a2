"""Internal. The pymongo-shaped waist: client, database, collection and cursor proxies.

The native ODMs talk to these objects exactly as they talk to pymongo; behind them each logical
collection of a privacy-enabled model is stored as an identity and a clinical collection.
"""
