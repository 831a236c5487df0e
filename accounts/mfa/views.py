"""Pages of the second factor: verify after the password, and the security page where a
person adds an authenticator app or a passkey, makes recovery codes and removes devices."""

import binascii
import secrets
from urllib.parse import parse_qs, urlsplit

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.models import WebAuthnCredential

from cxhub.errors import ApplicationError

from ..models import AuthenticatorApp
from . import report, selectors, services, session
from .forms import CodeForm, TotpAddForm
from .webauthn import script_config

_DEVICE_MODELS = {"totp": AuthenticatorApp, "passkey": WebAuthnCredential}


def _qr_svg(uri: str, label: str) -> str:
    """The otpauth URI as an inline SVG (no image request, nothing for a CSP to allow)."""
    svg = segno.make(uri, error="m").svg_inline(scale=4, border=2, title=escape(label))
    # Safe: segno draws paths from the URI's bits; the only text in it is our escaped label.
    return mark_safe(  # noqa: S308
        svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1)
    )


@never_cache
@login_required
def verify(request):
    """The second step of signing in (or a fresh check before removing a device)."""
    user = request.user
    devices = selectors.devices_of(user=user)
    if not devices["totp"] and not devices["passkeys"]:
        return redirect("mfa-security")
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        method = form.cleaned_data["method"]
        outcome = services.mfa_code_verify(user=user, method=method, code=form.cleaned_data["code"])
        if outcome.ok:
            if session.mark_verified(request, outcome.device):
                report.succeeded(request=request, user=user, method=method)
            return redirect(session.safe_next(request, next_url))
        report.failed(request=request, user=user, method=method)
        if outcome.wait:
            status = 429
            form.add_error(
                "code",
                f"Too many wrong codes: wait {outcome.wait} second(s), or use another way below.",
            )
        else:
            status = 400
            form.add_error("code", "Wrong or expired code.")
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "accounts/mfa_verify.html",
        {
            "form": form,
            "method": request.POST.get("method", ""),
            "devices": devices,
            "next": next_url,
            "webauthn_config": script_config(request),
        },
        status=status,
    )


@never_cache
@login_required
def security(request):
    user = request.user
    return render(
        request,
        "accounts/security.html",
        {
            "devices": selectors.devices_of(user=user),
            "verified": session.is_verified(user),
            "required": selectors.mfa_required_for(user=user),
            "next": session.safe_next(request, request.GET["next"])
            if request.GET.get("next")
            else "",
            "webauthn_config": script_config(request),
        },
    )


def _may_add(request) -> bool:
    """One who holds a device adds another only from a session that passed one."""
    return session.is_verified(request.user) or not selectors.has_primary_device(user=request.user)


@never_cache
@login_required
def totp_add(request):
    if not _may_add(request):
        return redirect(session.verify_url(request.get_full_path()))
    key = request.session.get(session.TOTP_KEY)
    if not key:
        key = request.session[session.TOTP_KEY] = binascii.hexlify(secrets.token_bytes(20)).decode()
    form = TotpAddForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                device = services.mfa_totp_confirm(
                    user=request.user,
                    key=key,
                    code=form.cleaned_data["code"],
                    name=form.cleaned_data["name"],
                )
            except ApplicationError as error:
                for field, errors in error.extra.get("fields", {}).items():
                    for message in errors:
                        form.add_error(field if field in form.fields else None, message)
            else:
                del request.session[session.TOTP_KEY]
                if not session.is_verified(request.user):
                    session.mark_verified(request, device)
                messages.success(
                    request,
                    "Authenticator app added. Make recovery codes now, in case you lose it.",
                )
                return redirect("mfa-security")
    device = AuthenticatorApp(user=request.user)
    device.set_key(key)
    url = device.config_url(issuer=settings.OTP_TOTP_ISSUER)
    secret = parse_qs(urlsplit(url).query)["secret"][0]
    return render(
        request,
        "accounts/mfa_totp_add.html",
        {
            "form": form,
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "qr": _qr_svg(url, "QR code to scan with your authenticator app"),
        },
        status=status,
    )


@never_cache
@login_required
@require_POST
def recovery_codes(request):
    if not session.is_verified(request.user):
        return redirect(session.verify_url(reverse("mfa-security")))
    codes = services.mfa_recovery_codes_generate(user=request.user)
    return render(request, "accounts/mfa_recovery_codes.html", {"codes": codes})


@login_required
@require_POST
def device_remove(request, kind: str, device_id: int):
    model = _DEVICE_MODELS.get(kind)
    if model is None:
        raise Http404
    device = model.objects.filter(user=request.user, pk=device_id).first()
    if device is None:
        raise Http404
    if not session.is_fresh(request):
        messages.info(request, "Confirm it is you, then remove the device again.")
        return redirect(session.verify_url(reverse("mfa-security")))
    in_use = request.session.get(DEVICE_ID_SESSION_KEY) == device.persistent_id
    services.mfa_device_remove(user=request.user, device=device)
    if in_use:
        # The session was verified with the device just removed, freshly: it stays verified
        # with another that it holds, or owes one again when none is left.
        others = selectors.totp_devices(user=request.user) + selectors.passkeys(user=request.user)
        if others:
            session.mark_verified(request, others[0])
        else:
            request.session.pop(DEVICE_ID_SESSION_KEY, None)
    messages.success(request, f"Removed {device.name or 'the device'}.")
    return redirect("mfa-security")
