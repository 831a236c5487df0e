"""`python -m tests.sso.saml_idp.serve`: the IdP (keys from SAML_IDP_KEY / SAML_IDP_CERT; a
second, unpublished "rogue" pair from SAML_IDP_ROGUE_KEY / _CERT signs when the test asks, as an
impostor would). Prints "READY <url>"."""

import json
import os
import threading
from urllib.parse import parse_qs

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server

from tests.sso.wsgi import QuietHandler, ThreadingServer

XMLSEC = os.environ.get("SAML_IDP_XMLSEC", "/usr/bin/xmlsec1")


class Idp:
    def __init__(self, base: str):
        self.base = base
        self.sp_metadata = ""
        self.person: dict = {}
        self.rogue = False
        self.lock = threading.Lock()
        self.server = self._server(rogue=False)

    def _config(self, *, rogue: bool) -> dict:
        key, cert = (
            ("SAML_IDP_ROGUE_KEY", "SAML_IDP_ROGUE_CERT")
            if rogue
            else (
                "SAML_IDP_KEY",
                "SAML_IDP_CERT",
            )
        )
        config = {
            "entityid": f"{self.base}/metadata",
            "xmlsec_binary": XMLSEC,
            "service": {
                "idp": {
                    "name": "Test IdP",
                    "endpoints": {
                        "single_sign_on_service": [
                            (f"{self.base}/sso/redirect", BINDING_HTTP_REDIRECT)
                        ],
                        "single_logout_service": [(f"{self.base}/slo", BINDING_HTTP_REDIRECT)],
                    },
                    "policy": {"default": {"lifetime": {"minutes": 15}}},
                    "name_id_format": [NAMEID_FORMAT_PERSISTENT],
                }
            },
            "key_file": os.environ[key],
            "cert_file": os.environ[cert],
        }
        if self.sp_metadata:
            config["metadata"] = {"inline": [self.sp_metadata]}
        return config

    def _server(self, *, rogue: bool) -> Server:
        loaded = IdPConfig()
        loaded.load(self._config(rogue=rogue))
        return Server(config=loaded)

    # The endpoints -----------------------------------------------------------------------------
    def metadata(self, environ):
        from saml2.metadata import create_metadata_string

        loaded = IdPConfig()
        loaded.load(self._config(rogue=False))
        return "200 OK", "text/xml", create_metadata_string(None, config=loaded, valid=1)

    def sign_on(self, environ):
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        with self.lock:
            server = self._server(rogue=self.rogue) if self.rogue else self.server
            request = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
            message = request.message
            args = self.server.response_args(message, [BINDING_HTTP_POST])
            person = self.person
            name_id = NameID(format=NAMEID_FORMAT_PERSISTENT, text=person["name_id"])
            response = server.create_authn_response(
                person["attributes"],
                userid=person["name_id"],
                name_id=name_id,
                authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:Password"},
                sign_response=True,
                sign_assertion=True,
                **args,
            )
            http = server.apply_binding(
                BINDING_HTTP_POST,
                str(response),
                args["destination"],
                query.get("RelayState", ""),
                response=True,
            )
        return "200 OK", "text/html", http["data"]

    def logout(self, environ):
        """The test's start of a Single Logout: the redirect a browser would follow to cxhub."""
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        with self.lock:
            sp = next(iter(self.server.metadata.with_descriptor("spsso")))
            _, destination = self.server.pick_binding(
                "single_logout_service", [BINDING_HTTP_REDIRECT], "spsso", entity_id=sp
            )
            request_id, request = self.server.create_logout_request(
                destination,
                sp,
                name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=query["name_id"]),
                sign=False,
            )
            http = self.server.apply_binding(
                BINDING_HTTP_REDIRECT, str(request), destination, "", sign=True
            )
        location = dict(http["headers"])["Location"]
        return "200 OK", "application/json", json.dumps({"location": location})

    def control(self, path, environ):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(size).decode()
        with self.lock:
            if path == "/test/sp-metadata":
                self.sp_metadata = body
                self.server = self._server(rogue=False)
            elif path == "/test/person":
                data = json.loads(body)
                self.person = data["person"]
                self.rogue = bool(data.get("rogue"))
        return "200 OK", "text/plain", "ok"

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        try:
            if path == "/metadata":
                status, kind, body = self.metadata(environ)
            elif path == "/sso/redirect":
                status, kind, body = self.sign_on(environ)
            elif path == "/test/logout":
                status, kind, body = self.logout(environ)
            elif path.startswith("/test/"):
                status, kind, body = self.control(path, environ)
            else:
                status, kind, body = "200 OK", "text/plain", "logged out"
        except Exception as exc:  # the test reads the log
            import traceback

            traceback.print_exc()
            status, kind, body = "500 Internal Server Error", "text/plain", repr(exc)
        data = body.encode() if isinstance(body, str) else body
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(data)))])
        return [data]


def main() -> None:
    from wsgiref.simple_server import make_server

    server = make_server(
        "127.0.0.1", 0, lambda e, s: [], server_class=ThreadingServer, handler_class=QuietHandler
    )
    server.set_app(Idp(f"http://127.0.0.1:{server.server_port}"))
    print(f"READY http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
