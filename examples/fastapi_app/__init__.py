"""A patients service on FastAPI and Beanie, stored split through privata_mongo.

``examples.fastapi_app.app:app`` is the ASGI application; ``create_app(database)`` builds one on
a database of your choice. See ``README.md`` beside this file for what works and what does not
yet (the data-subject rights endpoints answer 501 until privata's rights API lands).
"""
