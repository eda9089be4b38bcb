"""Production tracking: work orders, WIP, genealogy, OEE and downtime, read from stored events."""
