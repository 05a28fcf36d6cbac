"""Open311 GeoReport v2 over events: how civic apps hand residents' reports in."""
