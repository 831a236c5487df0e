"""Admin: the organisation's banned terms are set up here; posts and media are read-only
(they change only through the services, which keep versions and the audit trail)."""

from django.contrib import admin

from accounts.admin import AuditedAdminMixin

from .models import BannedTerm, Media, Post, PostTarget


@admin.register(BannedTerm)
class BannedTermAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_name = "banned_term"
    list_display = ("term", "team", "severity", "reason")
    list_filter = ("severity",)
    search_fields = ("term",)

    def audit_team(self, obj):
        return obj.team


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PostTargetInline(admin.TabularInline):
    model = PostTarget
    fields = ("social_account", "status", "external_id", "external_url", "attempt_count")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Post)
class PostAdmin(ReadOnlyAdmin):
    list_display = ("id", "team", "author", "status", "version", "scheduled_at")
    list_filter = ("status",)
    list_select_related = ("team", "author")
    search_fields = ("body",)
    inlines = [PostTargetInline]


@admin.register(Media)
class MediaAdmin(ReadOnlyAdmin):
    list_display = ("id", "team", "original_name", "format", "width", "height", "bytes")
    list_select_related = ("team",)
