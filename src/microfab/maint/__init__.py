"""Maintenance: work orders (corrective, predictive, preventive), preventive plans and when they
fall due, spare parts, reliability figures and maintenance windows for the planner."""
