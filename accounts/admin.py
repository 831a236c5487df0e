"""Django admin for organisation set-up: the team tree, memberships, users, their API tokens and
second factors.

Admin saves bypass the services, which is acceptable for set-up by the installation's operators,
so every save, delete and move here records its own audit event inside the admin's transaction.
Tokens are never shown: the admin only takes new ones, through write-only fields.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db import transaction
from django.utils.decorators import method_decorator
from django.views.decorators.debug import sensitive_post_parameters
from django_otp_webauthn.models import WebAuthnCredential
from treebeard.admin import TreeAdmin
from treebeard.forms import movenodeform_factory

from audit.services import record
from cxhub.errors import ApplicationError

from . import tokens
from .models import ApiToken, AuthenticatorApp, Membership, RecoveryCodeDevice, Team, User


class AuditedAdminMixin:
    """Records `<audit_name>.changed_in_admin` / `.deleted_in_admin` for every admin write.

    The events name the fields that changed, never their values (a token field included).
    """

    audit_name: str

    def audit_team(self, obj) -> Team | None:
        return None

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        record(
            actor=request.user,
            action=f"{self.audit_name}.changed_in_admin",
            obj=obj,
            team=self.audit_team(obj),
            data={"fields": sorted(form.changed_data), "created": not change},
        )

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._record_deleted(request, [obj])
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        # The "delete selected" action runs outside the admin's transaction: open one.
        with transaction.atomic():
            self._record_deleted(request, list(queryset))
            super().delete_queryset(request, queryset)

    def _record_deleted(self, request, objs) -> None:
        # Recorded before the rows go (same transaction), while their team can still be named.
        for obj in objs:
            record(
                actor=request.user,
                action=f"{self.audit_name}.deleted_in_admin",
                object_type=obj._meta.label_lower,
                object_id=str(obj.pk),
                team=self.audit_team(obj),
                data={"name": str(obj)},
            )


# Teams -------------------------------------------------------------------------------------------
@admin.register(Team)
class TeamAdmin(AuditedAdminMixin, TreeAdmin):
    audit_name = "team"
    form = movenodeform_factory(Team)
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def audit_team(self, obj):
        return obj

    def _record_deleted(self, request, objs) -> None:
        # A team about to go cannot be the event's team; its parent can. Its subtree goes too.
        for obj in objs:
            record(
                actor=request.user,
                action="team.deleted_in_admin",
                object_type="accounts.team",
                object_id=str(obj.pk),
                team=Team.objects.get_parent(obj),
                data={
                    "name": obj.name,
                    "slug": obj.slug,
                    "path": obj.path,
                    "descendants": Team.objects.get_descendant_count(obj),
                },
            )

    def move_node(self, request):
        # Moving a team moves every role held above it: one transaction, one audit event.
        with transaction.atomic():
            response = super().move_node(request)
            if response.status_code == 200:
                team = Team.objects.get(pk=request.POST["node"])
                record(
                    actor=request.user,
                    action="team.moved_in_admin",
                    obj=team,
                    team=team,
                    data={
                        "target": request.POST.get("target"),
                        "relation": request.POST.get("relation"),
                        "path": team.path,
                    },
                )
        return response


# Memberships -------------------------------------------------------------------------------------
@admin.register(Membership)
class MembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_name = "membership"
    list_display = ("user", "team", "role", "created_at")
    list_filter = ("role", ("team", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("user", "team")
    search_fields = ("user__username", "user__display_name", "user__email", "team__name")
    autocomplete_fields = ("user", "team")

    def audit_team(self, obj):
        return obj.team


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("team", "role", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("team",)


# Users -------------------------------------------------------------------------------------------
@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    audit_name = "user"
    inlines = (MembershipInline,)
    list_display = ("username", "display_name", "email", "is_active", "is_staff", "is_superuser")
    search_fields = ("username", "display_name", "first_name", "last_name", "email")
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("display_name", "first_name", "last_name", "email")}),
        *DjangoUserAdmin.fieldsets[2:],
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "display_name",
                    "email",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # Deactivation already stops their tokens (the API checks); revoke them too, so that
            # reactivating the account does not bring them back.
            tokens.api_tokens_revoke_all(user=obj, by=request.user, reason="deactivated")

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            # Success redirects to the user's page; a refused form re-renders or comes back here.
            if (
                request.method == "POST"
                and response.status_code == 302
                and response.url != request.get_full_path()
            ):
                user = self.get_object(request, unquote(id))
                record(
                    actor=request.user,
                    action="user.password_changed_in_admin",
                    obj=user,
                    data={"usable": user.has_usable_password()},
                )
        return response

    def save_formset(self, request, form, formset, change):
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        # Deleting clears the primary keys: note them first.
        doomed = [(f.instance.pk, f.instance) for f in formset.deleted_forms if f.instance.pk]
        super().save_formset(request, form, formset, change)
        for membership in formset.new_objects:
            self._record_membership(request, membership, membership.pk, "changed_in_admin", None)
        for membership, fields in formset.changed_objects:
            self._record_membership(request, membership, membership.pk, "changed_in_admin", fields)
        for pk, membership in doomed:
            self._record_membership(request, membership, pk, "deleted_in_admin", [])

    def _record_membership(self, request, membership, pk, verb, fields) -> None:
        """`fields` None: the membership was just created."""
        record(
            actor=request.user,
            action=f"membership.{verb}",
            object_type="accounts.membership",
            object_id=str(pk),
            team=membership.team,
            data={
                "fields": sorted(fields or []),
                "created": fields is None,
                "user": membership.user_id,
                "username": membership.user.username,
                "role": membership.role,
            },
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """People's API tokens, for the installation's operators: never a secret (only its hash is
    kept, and not shown either); made by their owners, revoked through the service."""

    list_display = ["prefix", "name", "user", "created_at", "expires_at", "last_used_at"]
    list_display += ["read_only", "revoked_at"]
    list_filter = ["read_only", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["prefix", "name", "user__username"]
    list_select_related = ["user"]
    fields = list_display + ["revoked_by"]
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens", permissions=["view"])
    def revoke(self, request, queryset):
        revoked, refused = 0, 0
        for token in queryset.filter(revoked_at__isnull=True):
            try:
                tokens.api_token_revoke(token=token, by=request.user)
            except ApplicationError:  # not theirs to revoke (a staff member, not an admin)
                refused += 1
            else:
                revoked += 1
        self.message_user(request, f"Revoked {revoked} token(s).", messages.SUCCESS)
        if refused:
            self.message_user(
                request, f"{refused} token(s) are not yours to revoke.", messages.ERROR
            )


# Second factors ----------------------------------------------------------------------------------
# The admin lists people's devices and removes one (a person who lost every device), audited;
# it never adds one nor shows a secret.


class SecondFactorAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "name", "confirmed")
    list_select_related = ("user",)
    search_fields = ("user__username", "name")
    fields = ("user", "name", "confirmed")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuthenticatorApp)
class AuthenticatorAppAdmin(SecondFactorAdmin):
    audit_name = "mfa_authenticator_app"


@admin.register(WebAuthnCredential)
class PasskeyAdmin(SecondFactorAdmin):
    audit_name = "mfa_passkey"


@admin.register(RecoveryCodeDevice)
class RecoveryCodeDeviceAdmin(SecondFactorAdmin):
    audit_name = "mfa_recovery_codes"
