"""Internal. The data-subject rights as core flows: what each right reads, writes and audits."""
