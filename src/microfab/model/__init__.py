"""Pure domain model: factory hierarchy, products, routings, calendars and events. No I/O."""
