"""Pure geometry helpers: coordinate systems, GeoJSON and polygon checks."""
