// The security page: once django-otp-webauthn's script has registered a passkey, reload so the
// list shows it (the library only announces success with an event).
document.addEventListener("otp_webauthn.register_complete", () => {
  window.location.reload();
});
