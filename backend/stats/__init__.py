"""Statistics: closure rates against the 98% benchmark (结案率), overdue events (read-only)."""
