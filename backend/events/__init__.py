"""Event reports (网格事项) from the field, their assignment and their trail."""
