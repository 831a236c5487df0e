"""Django admin of the social accounts and of cxhub's registrations with the networks' servers.

Saves are audited like every admin write (accounts.admin.AuditedAdminMixin). Tokens are never
shown: the admin only takes new ones, through write-only fields; per-account drafting grants go
through the services, audited.
"""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import redirect
from django.urls import reverse
from guardian.admin import AdminUserObjectPermissionsForm, GuardedModelAdminMixin

from accounts.admin import AuditedAdminMixin
from accounts.crypto import TokenCipherError
from accounts.models import User

from . import services
from .models import OAuthApp, SocialAccount

DRAFT_PERMISSION = "draft_socialaccount"


class SocialAccountForm(forms.ModelForm):
    """The encrypted columns are left out; new tokens come in through write-only fields."""

    new_access_token = forms.CharField(
        label="New access token",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the stored token. Stored tokens are never shown.",
    )
    new_refresh_token = forms.CharField(
        label="New refresh token",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the stored token.",
    )

    class Meta:
        model = SocialAccount
        # An allow-list: the *_encrypted columns never reach a form.
        fields = (
            "team",
            "channel",
            "handle",
            "display_name",
            "external_id",
            "base_url",
            "status",
            "expires_at",
        )

    def clean(self):
        cleaned = super().clean()
        access = cleaned.get("new_access_token")
        refresh = cleaned.get("new_refresh_token")
        if refresh and not access and not self.instance.has_tokens:
            self.add_error("new_access_token", "Give an access token with the refresh token.")
        elif access or refresh:
            # The token not replaced is kept: it must still be readable to be re-encrypted.
            try:
                self._tokens = {
                    "access_token": access or self.instance.access_token,
                    "refresh_token": refresh or self.instance.refresh_token,
                }
            except TokenCipherError as exc:
                raise forms.ValidationError(str(exc)) from None
        return cleaned

    def save(self, commit=True):
        tokens = getattr(self, "_tokens", None)
        if tokens:
            self.instance.set_tokens(**tokens)
        return super().save(commit=commit)


class DraftingGrantForm(AdminUserObjectPermissionsForm):
    """Per-account grants: only drafting means anything, and it goes through the services so
    each grant and revocation is audited like any other."""

    actor: User | None = None

    def get_obj_perms_field_choices(self):
        return [c for c in super().get_obj_perms_field_choices() if c[0] == DRAFT_PERMISSION]

    def get_obj_perms_field_initial(self):
        return [p for p in super().get_obj_perms_field_initial() if p == DRAFT_PERMISSION]

    def save_obj_perms(self) -> None:
        wanted = DRAFT_PERMISSION in self.cleaned_data[self.get_obj_perms_field_name()]
        held = DRAFT_PERMISSION in self.get_obj_perms_field_initial()
        if wanted and not held:
            services.social_account_grant_drafting(account=self.obj, user=self.user, by=self.actor)
        elif held and not wanted:
            services.social_account_revoke_drafting(account=self.obj, user=self.user, by=self.actor)


@admin.register(SocialAccount)
class SocialAccountAdmin(AuditedAdminMixin, GuardedModelAdminMixin, admin.ModelAdmin):
    audit_name = "social_account"
    form = SocialAccountForm
    list_display = ("handle", "channel", "team", "status", "expires_at", "has_tokens")
    list_filter = ("channel", "status")
    list_select_related = ("team",)
    search_fields = ("handle", "display_name", "external_id", "team__name")
    autocomplete_fields = ("team",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("team", "channel", "handle", "display_name", "external_id")}),
        ("Connection", {"fields": ("base_url", "status", "expires_at")}),
        ("Tokens", {"fields": ("new_access_token", "new_refresh_token")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(boolean=True, description="Tokens")
    def has_tokens(self, obj):
        return obj.has_tokens

    def audit_team(self, obj):
        return obj.team

    def get_obj_perms_manage_user_form(self, request):
        return type("DraftingGrantForm", (DraftingGrantForm,), {"actor": request.user})

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        # The selectors read per-person grants only: a group grant would look real and do nothing.
        messages.error(request, "Grant drafting to a person: group grants are not used.")
        return redirect(reverse("admin:networks_socialaccount_permissions", args=[object_pk]))


@admin.register(OAuthApp)
class OAuthAppAdmin(admin.ModelAdmin):
    """cxhub's registrations with Mastodon servers, made by the connect flow: shown to operators,
    never changed here and never showing the client secret."""

    list_display = ["base_url", "channel", "client_id", "redirect_uri", "created_at"]
    list_filter = ["channel"]
    search_fields = ["base_url", "client_id"]
    fields = ["channel", "base_url", "client_id", "redirect_uri", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
