"""A loopback OAuth2 provider for the end-to-end tests: the token endpoint
(POST /token, the refresh_token grant of RFC 6749 6) that the sync-worker
calls, and the introspection endpoint (POST /introspect, RFC 7662) that
the test Dovecot's oauth2 passdb asks about each access token, so the test
decides which tokens are valid. Standard library only (http.server in a
thread). Every request is counted and kept for the test to look at.
"""

import http.server
import json
import secrets
import threading
import time
import urllib.parse

from stack import free_port


class OAuthServer:
    """clients: {client_id: client_secret}. grant(user) makes a refresh
    token; issue(user) an access token; revoke_*() end them."""

    def __init__(self, clients, expires_in=3600, delay=0.0, rotate=False):
        self.clients = dict(clients)
        self.expires_in = expires_in
        self.delay = delay
        self.rotate = rotate
        self.lock = threading.Lock()
        self.access = {}   # token -> user
        self.refresh = {}  # token -> (user, client_id)
        self.refreshes = []  # every POST /token: its form
        self.introspections = 0
        self.port = None
        self.httpd = None
        self.thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        self.port = free_port()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(n).decode(), keep_blank_values=True)
                form = {k: v[0] for k, v in form.items()}
                if self.path == "/token":
                    status, body = server.token(form, self.headers.get("Content-Type", ""))
                elif self.path == "/introspect":
                    status, body = server.introspect(form)
                else:
                    status, body = 404, {"error": "not_found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    # -- tokens -----------------------------------------------------------
    def grant(self, user, client_id):
        token = "rt-" + secrets.token_hex(12)
        with self.lock:
            self.refresh[token] = (user, client_id)
        return token

    def issue(self, user):
        token = "at-" + secrets.token_hex(12)
        with self.lock:
            self.access[token] = user
        return token

    def expire_access(self):
        """Every access token stops being valid (as when they expire)."""
        with self.lock:
            self.access.clear()

    def revoke_refresh(self):
        with self.lock:
            self.refresh.clear()

    def refresh_count(self):
        with self.lock:
            return len(self.refreshes)

    # -- endpoints --------------------------------------------------------
    def token(self, form, content_type):
        with self.lock:
            self.refreshes.append(dict(form, contentType=content_type))
        if self.delay:
            time.sleep(self.delay)
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        cid = form.get("client_id")
        if cid not in self.clients or self.clients[cid] != form.get("client_secret"):
            return 401, {"error": "invalid_client", "error_description": "Unknown client."}
        with self.lock:
            held = self.refresh.get(form.get("refresh_token", ""))
        if not held or held[1] != cid:
            return 400, {"error": "invalid_grant",
                         "error_description": "Token has been expired or revoked."}
        body = {"access_token": self.issue(held[0]), "expires_in": self.expires_in,
                "token_type": "Bearer"}
        if self.rotate:
            with self.lock:
                del self.refresh[form["refresh_token"]]
            body["refresh_token"] = self.grant(held[0], cid)
        return 200, body

    def introspect(self, form):
        with self.lock:
            self.introspections += 1
            user = self.access.get(form.get("token", ""))
        if user is None:
            return 200, {"active": False}
        return 200, {"active": True, "username": user}
