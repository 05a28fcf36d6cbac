"""GIS interoperability: OGC API - Features, GeoJSON downloads and vector tiles."""
