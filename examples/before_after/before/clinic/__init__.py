"""A small clinic on mongoengine: patients, appointments, and the queries the front desk runs."""
