"""The publishing app's configuration."""

from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"

    def ready(self) -> None:
        # Imported once the models are loaded: the sandbox channel writes publishing's feed.
        from networks.channels import register_channel

        from .sandbox import SandboxChannel

        register_channel(SandboxChannel())
