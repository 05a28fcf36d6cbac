.PHONY: run test openapi bench bench-gis lint

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

# Rewrite openapi/openapi.json from the code (a test fails when it is stale).
openapi:
	@bash scripts/bootstrap.sh
	@DATABASE_URL=postgresql://unused/unused .venv/bin/python -m backend.openapi_doc write

bench:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.assignment

# OGC API, GeoJSON downloads and tiles at Guangzhou scale, against ogr2ogr and pygeoapi.
bench-gis:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.gis
