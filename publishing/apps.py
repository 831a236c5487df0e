"""The publishing app: posts, their targets and media, and their dispatch to the networks."""

from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"

    def ready(self) -> None:
        # What publishing tells the apps below it (cxhub.hooks), and the sandbox channel it
        # gives the networks (it writes publishing's feed). Imported here, not at the top: an
        # AppConfig module is imported before the models are loaded.
        from celery.signals import worker_process_shutdown, worker_shutdown

        from audit import hooks as audit_hooks
        from networks import hooks as network_hooks
        from networks.channels import register_channel

        # The tasks register with Celery in every process (the web's too), so that the
        # dispatcher queues them by name (publishing.dispatch.claim): tasks imports it.
        from . import audit_rules, channel_media, public_media, tasks  # noqa: F401
        from .dispatch import lanes, sweep
        from .sandbox import SandboxChannel

        audit_hooks.event_rules.connect(audit_rules.event_rules)
        network_hooks.account_reconnected.connect(sweep.targets_release_for_account)
        network_hooks.media_files.connect(channel_media.load_media)
        network_hooks.public_image_url.connect(public_media.public_image_url)
        network_hooks.target_tries.connect(channel_media.target_tries)
        register_channel(SandboxChannel())
        # A stopping worker process (a prefork child, or the main one of a solo pool) lets the
        # publish groups it runs in threads end first (dispatch/lanes.py).
        worker_process_shutdown.connect(lanes.drain_at_exit, dispatch_uid="cxhub.publish.drain")
        worker_shutdown.connect(lanes.drain_at_exit, dispatch_uid="cxhub.publish.drain_main")
