"""The WSGI entry point for gunicorn: `gunicorn backend.wsgi:app`."""

from backend import create_app, settle_heap

app = create_app()
settle_heap()
