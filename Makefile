.PHONY: run test openapi bench bench-assignment bench-stats bench-alerts bench-gis bench-dashboard bench-patrols bench-scale

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

# Rewrite openapi/openapi.json from the code (a test fails when it is stale).
openapi:
	@bash scripts/bootstrap.sh
	@DATABASE_URL=postgresql://unused/unused .venv/bin/python -m backend.openapi_doc write

# Every benchmark in turn; each prints its table (the first run builds its datasets).
bench: bench-assignment bench-stats bench-alerts bench-gis bench-dashboard bench-patrols

# Point lookups and reports over HTTP at Guangzhou scale, against raw SQL.
bench-assignment:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.assignment

# District-wide closure statistics on 1.37 million (Conghua) and 2 million (Guangzhou) events.
bench-stats:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.stats

# One-point calls on 23,000 emergency units, against a raw KNN query.
bench-alerts:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.alerts

# OGC API, GeoJSON downloads and tiles at Guangzhou scale, against ogr2ogr and pygeoapi.
bench-gis:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.gis

# The supervisors' page in chromium: cold loads of Conghua by grid and of a 5,168-grid district.
bench-dashboard:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.dashboard

# Patrol tracks: points/s over HTTP against COPY, a Guangzhou day's figures, storage per worker-day.
bench-patrols:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.patrols

# Closure statistics on 10 million Guangzhou-scale events: rollups against the events, writes
# with and without the rollups' trigger, and the hot standby under reporting phones.
bench-scale:
	@bash scripts/bootstrap.sh
	@.venv/bin/python -m bench.scale
