"""Internal. Generator flows: the order of I/O for each operation, executed by a driver."""
