"""End to end: OAuth2 mail accounts against a real Dovecot whose oauth2
passdb asks a loopback OAuth2 provider (oauth_server.py) about every
token, so the test decides what is valid, and the stack with two
sync-worker processes.

A managed account syncs with its access token; when the token stops being
valid the worker refreshes it once (the provider sees exactly one refresh
grant, form-encoded, with the client's id, secret and scope) and the sync
goes through; a token past its expiresAt is refreshed before login; a
revoked refresh token ends in auth_error with the provider's words. An
app-supplied token signs in by XOAUTH2 and by OAUTHBEARER (as its
provider prefers), and with a server that offers only OAUTHBEARER; a
refused one shows the server's challenge and PATCH pushes a new one. Two
workers that need a fresh token for one account at once (a watch session
and a sync) refresh it once. Bad `auth` is 400 naming the field. No client
secret, refresh token or access token is ever in Redis, a service log or a
reply."""

import os
import subprocess
import time

import e2ebase
from dovecot import Dovecot
from oauth_server import OAuthServer
from stack import Service, free_port

RW = "oauth-rw-token-0123456789abcdef"
CLIENT_ID = "client-0001.apps.example"
CLIENT_SECRET = "cs-" + "7f3e9a1c5b2d8e4f"
USERS = {"alice": "-", "bob": "-", "carol": "-", "dave": "-", "erin": "-", "frank": "-"}
FUTURE = "2099-01-01T00:00:00Z"
PAST = "2000-01-01T00:00:00Z"


class OAuthTest(e2ebase.StackTestCase):
    STACK_ENV = {"API_TOKEN": RW, "SYNC_CONCURRENCY": "1", "LOG_LEVEL": "debug"}

    @classmethod
    def setUpClass(cls):
        cls.provider = OAuthServer({CLIENT_ID: CLIENT_SECRET}).start()
        cls.dovecot = cls.bearer_only = None
        try:
            cls.dovecot = Dovecot(USERS, messages=3,
                                  oauth2_url=cls.provider.url + "/introspect").start()
            cls.bearer_only = Dovecot({"gina": "-"}, messages=2,
                                      oauth2_url=cls.provider.url + "/introspect",
                                      mechanisms="oauthbearer").start()
            super().setUpClass()
            # A second sync-worker process on the same coordinator.
            env = cls.stack.service_env()
            env["SYNC_WORKER_RPC_URL"] = "tcp://127.0.0.1:%d" % free_port()
            env["SYNC_WORKER_EVENTS_URL"] = "tcp://127.0.0.1:%d" % free_port()
            cls.worker2 = Service("sync-worker", env, cls.stack.workdir, label="sync-worker-2")
            cls.worker2.start()
            cls.replies = []
        except BaseException:
            cls.tearDownServers()
            raise

    @classmethod
    def tearDownServers(cls):
        for d in (cls.dovecot, cls.bearer_only):
            if d:
                d.stop()
        cls.provider.stop()

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.worker2.stop()
            assert code == 0, "second sync-worker exit status %s" % code
            super().tearDownClass()
        finally:
            cls.tearDownServers()

    # -- helpers -----------------------------------------------------------
    def call(self, method, path, body=None):
        r = self.http.request(method, path, body)
        self.replies.append(r.raw or b"")
        return r

    def create(self, user, auth, port=None, watch=False):
        r = self.call("POST", "/api/accounts", {
            "emailAddress": "%s@example.com" % user, "imapHost": "127.0.0.1",
            "imapPort": port or self.dovecot.port, "security": "none", "username": user,
            "auth": auth, "watchFolders": ["INBOX"] if watch else []})
        self.assertStatus(r, 201)
        return r.json

    def managed(self, user, **extra):
        auth = {"type": "oauth2", "provider": "custom", "clientId": CLIENT_ID,
                "clientSecret": CLIENT_SECRET,
                "refreshToken": self.provider.grant(user, CLIENT_ID),
                "tokenUrl": self.provider.url + "/token", "scope": "mail"}
        auth.update(extra)
        return auth

    def sync(self, acct, timeout=60):
        """Ask for a sync and wait until it completed: the account."""
        r = self.call("POST", "/api/accounts/%s/sync" % acct)
        self.assertStatus(r, 202)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            a = self.call("GET", "/api/accounts/%s" % acct).json
            if a["syncStatus"] in ("ok", "error", "auth_error"):
                return a
            time.sleep(0.1)
        self.fail("sync of %s did not complete within %d s" % (acct, timeout))

    def messages(self, acct):
        r = self.call("GET", "/api/accounts/%s/messages" % acct)
        self.assertStatus(r, 200)
        return r.json["messages"]

    # -- tests ---------------------------------------------------------------
    def test_bad_auth_is_400_naming_the_field(self):
        base = {"emailAddress": "x@example.com", "imapHost": "127.0.0.1",
                "imapPort": self.dovecot.port, "security": "none", "username": "x"}
        good = {"type": "oauth2", "provider": "custom", "clientId": "c", "refreshToken": "r",
                "tokenUrl": "https://auth.example.com/token"}
        cases = [
            (dict(good), {"password": "pw"}, r"auth.*not both|password"),
            (dict(good, provider="yahoo"), {}, r"auth\.provider"),
            ({k: v for k, v in good.items() if k != "tokenUrl"}, {}, r"auth\.tokenUrl"),
            (dict(good, tokenUrl="http://auth.example.com/token"), {}, r"auth\.tokenUrl"),
            (dict(good, tokenUrl="ftp://127.0.0.1/token"), {}, r"auth\.tokenUrl"),
            (dict(good, provider="google", tokenUrl="https://a.example/t"), {},
             r"auth\.tokenUrl"),
            (dict(good, type="basic"), {}, r"auth\.type"),
            ({"type": "oauth2", "accessToken": "t"}, {}, r"auth\.expiresAt"),
            ({"type": "oauth2", "accessToken": "t", "expiresAt": "soon"}, {},
             r"auth\.expiresAt"),
            (dict(good, extra=1), {}, r"auth\.extra"),
        ]
        for auth, more, pattern in cases:
            r = self.call("POST", "/api/accounts", dict(base, auth=auth, **more))
            self.assertJsonError(r, 400, pattern)
        # http:// is allowed on a loopback host.
        ok = self.call("POST", "/api/accounts",
                       dict(base, auth=dict(good, tokenUrl="http://127.0.0.1:9/token"),
                            watchFolders=[]))
        self.assertStatus(ok, 201)
        self.assertEqual(ok.json["auth"], {"type": "oauth2", "provider": "custom",
                                           "expiresAt": None})
        self.call("DELETE", "/api/accounts/%s" % ok.json["id"])

    def test_managed_token_refused_refreshed_once_then_revoked(self):
        p = self.provider
        token = p.issue("alice")
        acct = self.create("alice", self.managed("alice", accessToken=token,
                                                 expiresAt=FUTURE))
        self.assertEqual(acct["auth"], {"type": "oauth2", "provider": "custom",
                                        "expiresAt": "2099-01-01T00:00:00.000Z"})
        before = p.refresh_count()
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)
        self.assertEqual(len(self.messages(acct["id"])), 3)
        self.assertEqual(p.refresh_count(), before, "a valid token needs no refresh")

        # The token stops being valid: the server refuses it, one refresh,
        # one retry, and the sync goes through.
        p.expire_access()
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)
        self.assertEqual(p.refresh_count(), before + 1)
        form = p.refreshes[-1]
        self.assertEqual(form["grant_type"], "refresh_token")
        self.assertEqual(form["client_id"], CLIENT_ID)
        self.assertEqual(form["client_secret"], CLIENT_SECRET)
        self.assertEqual(form["scope"], "mail")
        self.assertTrue(form["contentType"].startswith("application/x-www-form-urlencoded"))
        self.assertRegex(a["auth"]["expiresAt"], r"^\d{4}-")
        self.assertNotEqual(a["auth"]["expiresAt"], "2099-01-01T00:00:00.000Z")
        # The refreshed token was stored: the next sync needs none.
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)
        self.assertEqual(p.refresh_count(), before + 1)

        # The user revoked the app: the refresh is refused.
        p.expire_access()
        p.revoke_refresh()
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "auth_error", a)
        self.assertIn("invalid_grant", a["errorMessage"])
        self.assertIn("Token has been expired or revoked.", a["errorMessage"])
        self.assertIn("refreshToken", a["errorMessage"])
        self.assertEqual(p.refresh_count(), before + 2)

    def test_expired_token_refreshed_before_login(self):
        p = self.provider
        acct = self.create("bob", self.managed("bob", accessToken=p.issue("bob"),
                                               expiresAt=PAST))
        before = p.refresh_count()
        failures = self.dovecot_failures()
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)
        self.assertEqual(p.refresh_count(), before + 1)
        self.assertEqual(self.dovecot_failures(), failures, "no login with the expired token")
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)
        self.assertEqual(p.refresh_count(), before + 1)
        # Without an access token at all, the first sync refreshes too.
        acct = self.create("frank", self.managed("frank"))
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)
        self.assertEqual(p.refresh_count(), before + 2)

    def dovecot_failures(self):
        with open(self.dovecot.log_path, encoding="utf-8", errors="replace") as f:
            return f.read().count("auth failed")

    def test_app_supplied_token_each_mechanism(self):
        p = self.provider
        # google prefers XOAUTH2, no provider (custom) OAUTHBEARER.
        accts = {}
        for user, provider, mech in (("carol", "google", "XOAUTH2"),
                                     ("dave", None, "OAUTHBEARER")):
            auth = {"type": "oauth2", "accessToken": p.issue(user), "expiresAt": FUTURE}
            if provider:
                auth["provider"] = provider
            acct = accts[mech] = self.create(user, auth)
            a = self.sync(acct["id"])
            self.assertEqual(a["syncStatus"], "ok", a)
            self.assertEqual(len(self.messages(acct["id"])), 3)
            self.assertIn((user, mech), self.dovecot.login_methods())
        # Refused: the server's challenge is shown; PATCH pushes a new one.
        before = p.refresh_count()
        p.expire_access()
        a = self.sync(accts["XOAUTH2"]["id"])
        self.assertEqual(a["syncStatus"], "auth_error", a)
        self.assertIn("XOAUTH2", a["errorMessage"])
        self.assertIn('"status":"401"', a["errorMessage"].replace(" ", ""))
        acct = accts["OAUTHBEARER"]
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "auth_error", a)
        self.assertIn("OAUTHBEARER", a["errorMessage"])
        self.assertIn('"status":"invalid_token"', a["errorMessage"].replace(" ", ""))
        self.assertIn("PATCH", a["errorMessage"])
        self.assertEqual(p.refresh_count(), before, "nothing to refresh with")
        r = self.call("PATCH", "/api/accounts/%s" % acct["id"],
                      {"auth": {"type": "oauth2", "accessToken": p.issue("dave"),
                                "expiresAt": "2098-01-01T00:00:00Z"}})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["auth"]["expiresAt"], "2098-01-01T00:00:00.000Z")
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)

    def test_server_with_oauthbearer_only(self):
        p = self.provider
        acct = self.create("gina", {"type": "oauth2", "provider": "google",
                                    "accessToken": p.issue("gina"), "expiresAt": FUTURE},
                           port=self.bearer_only.port)
        a = self.sync(acct["id"])
        self.assertEqual(a["syncStatus"], "ok", a)
        self.assertEqual(len(self.messages(acct["id"])), 2)
        self.assertEqual(self.bearer_only.login_methods(), [("gina", "OAUTHBEARER")])

    def test_two_workers_refresh_once(self):
        p = self.provider
        p.delay = 2.0
        try:
            before = p.refresh_count()
            acct = self.create("erin", self.managed("erin"), watch=True)
            # The watch (on either worker) needs a token now; so does the sync.
            time.sleep(0.3)
            a = self.sync(acct["id"])
            self.assertEqual(a["syncStatus"], "ok", a)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                a = self.call("GET", "/api/accounts/%s" % acct["id"]).json
                if a["watch"]["state"] == "idle":
                    break
                time.sleep(0.2)
            self.assertEqual(a["watch"]["state"], "idle", a)
            self.assertEqual(p.refresh_count(), before + 1)
            logins = [m for m in self.dovecot.login_methods() if m[0] == "erin"]
            self.assertGreaterEqual(len(logins), 2, "both sessions signed in")
            # One of them waited for the other's refresh.
            waited = False
            for name in os.listdir(self.stack.workdir):
                if name.startswith("sync-worker") and name.endswith(".log"):
                    with open(os.path.join(self.stack.workdir, name), encoding="utf-8") as f:
                        waited = waited or ("event=oauth_refresh_wait msg=\"account=%s"
                                            % acct["id"]) in f.read()
            self.assertTrue(waited, "no session waited for the refresh")
        finally:
            p.delay = 0.0
            self.call("DELETE", "/api/accounts/%s" % acct["id"])

    def test_zz_no_secret_in_the_clear(self):
        """Runs last (unittest orders by name): every secret the provider
        issued, and the client secret, in no Redis key or value, no service
        log and no reply."""
        p = self.provider
        with p.lock:
            secrets = [CLIENT_SECRET] + list(p.access) + list(p.refresh)
            secrets += [f.get("refresh_token", "") for f in p.refreshes]
        secrets = [s for s in secrets if s]
        self.assertGreater(len(secrets), 5)
        url = self.stack.redis.url
        script = ("for k in $(redis-cli -u %s --scan); do echo \"$k\"; "
                  "case $(redis-cli -u %s TYPE \"$k\") in "
                  "string) redis-cli -u %s --raw GET \"$k\";; "
                  "hash) redis-cli -u %s --raw HGETALL \"$k\";; "
                  "list) redis-cli -u %s --raw LRANGE \"$k\" 0 -1;; "
                  "set) redis-cli -u %s --raw SMEMBERS \"$k\";; "
                  "zset) redis-cli -u %s --raw ZRANGE \"$k\" 0 -1;; "
                  "stream) redis-cli -u %s --raw XRANGE \"$k\" - +;; esac; done"
                  % ((url,) * 8))
        dump = subprocess.run(["sh", "-c", script], capture_output=True, timeout=120).stdout
        self.assertIn(b"account:", dump)
        logs = b""
        for name in os.listdir(self.stack.workdir):
            if name.endswith(".log"):
                with open(os.path.join(self.stack.workdir, name), "rb") as f:
                    logs += f.read()
        self.assertIn(b"oauth_refreshed", logs)
        replies = b"\n".join(self.replies)
        for s in secrets:
            b = s.encode()
            self.assertNotIn(b, dump, "a secret in Redis")
            self.assertNotIn(b, logs, "a secret in a service log")
            self.assertNotIn(b, replies, "a secret in a reply")
