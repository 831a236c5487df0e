"""Django admin for single sign-on: the role rules (written through sso.services, so each
change is audited), the preview of who would get what, and the identities (read only, with
deprovisioning as an action)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import path

from . import selectors, services
from .forms import PreviewForm
from .models import Identity, RoleRule


@admin.register(RoleRule)
class RoleRuleAdmin(admin.ModelAdmin):
    list_display = ("claim", "operator", "value", "role", "team", "provider", "updated_at")
    list_filter = ("role", "provider", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("team",)
    search_fields = ("claim", "value", "team__name")
    autocomplete_fields = ("team",)
    fields = ("provider", "claim", "operator", "value", "team", "role")
    change_list_template = "admin/sso/rolerule/change_list.html"

    def save_model(self, request, obj, form, change):
        fields = {name: form.cleaned_data[name] for name in self.fields}
        if change:
            services.sso_rule_update(rule=obj, by=request.user, **fields)
        else:
            rule = services.sso_rule_create(by=request.user, **fields)
            obj.pk, obj.created_at, obj.updated_at = rule.pk, rule.created_at, rule.updated_at

    def delete_model(self, request, obj):
        services.sso_rule_delete(rule=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for rule in queryset.select_related("team"):
                services.sso_rule_delete(rule=rule, by=request.user)

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("preview/", preview, name="sso_rolerule_preview"), *super().get_urls()]

    def preview_view(self, request):
        """Who would get what: the rules tried on pasted claims or a recent sign-in's."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        identities = selectors.recent_identities()
        form = PreviewForm(request.POST or None, identities=identities)
        result = None
        if request.method == "POST" and form.is_valid():
            identity = form.cleaned_data["identity"]
            claims = form.cleaned_data["claims"]
            provider = form.cleaned_data["provider"]
            if claims is None:
                claims, provider = identity.claims, identity.provider
            issuer, subject = "", ""
            if identity is not None:
                issuer, subject = identity.issuer, identity.subject
            else:
                subject = str(claims.get("sub") or claims.get("name_id") or "")
                known = Identity.objects.filter(provider=provider, subject=subject).first()
                issuer = known.issuer if known else ""
            result = selectors.rules_preview(
                claims=claims, provider=provider, issuer=issuer, subject=subject
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Preview the SSO role rules",
            "form": form,
            "result": result,
        }
        return TemplateResponse(request, "admin/sso/rolerule/preview.html", context)


@admin.register(Identity)
class IdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "provider", "subject", "last_login_at", "deprovisioned_at")
    list_filter = ("provider",)
    list_select_related = ("user",)
    search_fields = ("user__username", "subject", "user__email")
    readonly_fields = (
        "user",
        "provider",
        "issuer",
        "subject",
        "claims",
        "created_at",
        "last_login_at",
        "checked_at",
        "deprovisioned_at",
    )
    fields = readonly_fields
    actions = ["deprovision"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Deprovision: deactivate and remove the roles SSO gave")
    def deprovision(self, request, queryset):
        for identity in queryset:
            services.sso_user_deprovision(
                identity=identity, reason="deprovisioned in the admin", by=request.user
            )
        messages.success(request, f"{queryset.count()} deprovisioned.")
