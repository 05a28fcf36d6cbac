"""Running the service: metrics, request logs, backups and housekeeping, for its operators."""
