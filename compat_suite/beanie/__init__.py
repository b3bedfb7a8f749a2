"""Compat scenarios for Beanie: native ``beanie`` versus ``privata_mongo.beanie``."""
