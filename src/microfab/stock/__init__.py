"""Materials and inventory: stock movements, on hand, FEFO, replenishment, kanban tasks."""
