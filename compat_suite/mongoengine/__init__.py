"""Compat scenarios for mongoengine: native ``mongoengine`` versus ``privata_mongo.mongoengine``."""
