"""The lead's desk: the pages and API through which leads read the audit trail of their subtree
(the log, its exports and proofs, the integrity box), the reports and a post's timeline. It sits
on top: it reads the trail (audit/) and the posts' and approvals' models, and owns no models."""

from django.apps import AppConfig


class DeskConfig(AppConfig):
    name = "desk"
    verbose_name = "Lead's desk"
