"""cxhub: the Django project. Celery is imported here so shared tasks bind to our app."""

from .celery import app as celery_app

__all__ = ("celery_app",)
