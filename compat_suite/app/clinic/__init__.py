"""A small clinic: patients, doctors, visits."""
