"""The inbox in Django's admin: read-only views for the organisation's set-up people (triage
happens on the inbox page and the API, through the services)."""

from django.contrib import admin

from .models import InboundItem, IngestState


@admin.register(InboundItem)
class InboundItemAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "kind", "author_handle", "status", "sentiment", "posted_at"]
    list_filter = ["kind", "status", "sentiment"]
    search_fields = ["author_handle", "text", "network_id"]
    list_select_related = ["account"]
    raw_id_fields = ["account", "target", "assignee"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IngestState)
class IngestStateAdmin(admin.ModelAdmin):
    list_display = ["account", "next_at", "interval_seconds", "last_run_at", "failures"]
    list_select_related = ["account"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
