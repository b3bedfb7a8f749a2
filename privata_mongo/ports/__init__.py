"""Internal. The small protocols the drivers talk to: storage, keys, KMS, cache, audit, clock."""
