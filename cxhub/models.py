"""Liveness of the background processes, as seen by the web processes."""

from django.db import models


class Heartbeat(models.Model):
    name = models.CharField(max_length=200, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
