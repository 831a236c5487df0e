"""The audit trail in the Django admin: for reading only."""

from django.contrib import admin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("seq", "at", "actor_name", "action", "object_type", "object_id", "team")
    list_filter = ("action",)
    search_fields = ("action", "actor_name", "object_type", "object_id")
    list_select_related = ("team",)
    ordering = ("-seq",)
    # Counting a long trail on every page is slow and tells nobody anything.
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
