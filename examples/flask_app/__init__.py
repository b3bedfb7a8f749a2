"""A clinic service on Flask and mongoengine, made GDPR/HIPAA-ready by its imports alone."""
