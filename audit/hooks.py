"""What the audit trail lets the apps above it tell it (cxhub.hooks)."""

from cxhub.hooks import Hook

# Which rows must have their event in the trail (audit_verify's last check): each handler
# returns a sequence of audit.verify.EventRule. The apps that record the events connect theirs
# in their AppConfig.ready().
event_rules = Hook("audit.event_rules")
