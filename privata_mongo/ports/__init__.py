"""Internal. The small protocols the drivers talk to: storage, and later keys, cache, audit."""
