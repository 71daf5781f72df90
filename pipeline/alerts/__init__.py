"""Alerts: which conditions fire now, their state in the warehouse, the webhook's message and its delivery."""
