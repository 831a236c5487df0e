"""Admin for approval policies (organisation set-up), audited like the other admin writes.
Requests, steps and decisions are runtime records: read-only here."""

from django.contrib import admin

from accounts.admin import AuditedAdminMixin
from audit.services import record

from .models import ApprovalPolicy, ApprovalRequest, ApprovalStage


class ApprovalStageInline(admin.TabularInline):
    model = ApprovalStage
    extra = 0
    fields = (
        "order",
        "name",
        "decider_team",
        "decider_role",
        "named_users",
        "rule",
        "quorum",
        "sla_hours",
        "escalate_to_team",
        "escalate_to_role",
    )
    autocomplete_fields = ("decider_team", "escalate_to_team", "named_users")


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_name = "approval_policy"
    list_display = ("name", "team", "social_account", "schedule_changes_need_approval")
    list_select_related = ("team", "social_account")
    autocomplete_fields = ("team", "social_account")
    inlines = [ApprovalStageInline]

    def audit_team(self, obj):
        return obj.team or (obj.social_account.team if obj.social_account_id else None)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Stage changes are part of the policy: record what the stages are now.
        record(
            actor=request.user,
            action="approval_policy.stages_saved_in_admin",
            obj=form.instance,
            team=self.audit_team(form.instance),
            data={"stages": [s.name for s in form.instance.stages.order_by("order")]},
        )


@admin.register(ApprovalRequest)
class ApprovalRequestAdmin(admin.ModelAdmin):
    list_display = ("id", "post", "version", "status", "break_glass", "created_at")
    list_filter = ("status", "break_glass")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
