# The supervisors' page's npm packages, exactly as the lock file pins them.
FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY backend/dashboard/web/package.json backend/dashboard/web/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

FROM python:3.11-slim-bookworm
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY alembic.ini ./
COPY backend backend
COPY --from=web /web/node_modules backend/dashboard/web/node_modules
COPY geo geo
COPY migrations migrations
COPY scripts/gunicorn.conf.py scripts/
ENV WANGGE_HOST=0.0.0.0 WANGGE_PORT=5000
EXPOSE 5000
CMD ["sh", "-c", "flask --app backend.wsgi demo prepare && exec gunicorn -c scripts/gunicorn.conf.py -b ${WANGGE_HOST}:${WANGGE_PORT} -w 4 --worker-class gthread --threads 4 --reuse-port backend.wsgi:app"]
