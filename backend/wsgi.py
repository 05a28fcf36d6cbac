"""The WSGI entry point for gunicorn: `gunicorn backend.wsgi:app`."""

from backend import create_app, gunicorn_errors, settle_heap

app = create_app()
gunicorn_errors.install()
settle_heap()
