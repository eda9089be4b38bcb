"""SimPy micro-factory simulator that reports through the same event contract as real machines."""
