"""A hospital ward on Beanie: patients, nurses, admissions."""
