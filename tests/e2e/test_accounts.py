"""End to end over HTTP: the email accounts of seed 004 through the gateway
and the coordinator. Create, read, list, update and delete; bad input on every
field refused with nothing stored; the password never coming back in any
reply nor in any service's log; "sync now"."""

import base64
import json
import os
import unittest

from e2ebase import StackTestCase, raw_request
from stack import read_tail

TOKEN = "e2e-accounts-token-0123456789"

# The public view of an account (services/coordinator/README.md).
ACCOUNT_KEYS = {"id", "emailAddress", "imapHost", "imapPort", "security", "username", "folders",
                "watchFolders", "watch", "tlsVerify", "syncStatus", "errorMessage", "lastSyncedAt", "nextSyncAt",
                "consecutiveFailures", "createdAt", "updatedAt"}


def account_body(n=0, **over):
    body = {
        "emailAddress": "user%d@example.com" % n,
        "imapHost": "imap.example.com",
        "imapPort": 993,
        "security": "tls",
        "username": "user%d" % n,
        "password": "pw-%d-%s" % (n, os.urandom(6).hex()),
        "folders": ["INBOX"],
        # The host does not exist: no IDLE watch, whose state would move.
        "watchFolders": [],
        "tlsVerify": True,
    }
    body.update(over)
    return body


def encodings(secret):
    """The password as it might leak: plain, hex, and every base64 flavour."""
    raw = secret.encode()
    b64 = base64.b64encode(raw).decode()
    u64 = base64.urlsafe_b64encode(raw).decode()
    return {secret, raw.hex(), raw.hex().upper(), b64, b64.rstrip("="), u64, u64.rstrip("=")}


class AccountsTestBase(StackTestCase):
    STACK_ENV = {"API_TOKEN": TOKEN}

    def create(self, body):
        r = self.http.post("/api/accounts", body)
        self.assertStatus(r, 201)
        return r.json

    def get(self, aid):
        """GET /api/accounts/:id, whose folders are [{name, total, unread}]
        (nothing synced here: zero counts), returned with the folder names
        only, as the other routes show them."""
        r = self.http.get("/api/accounts/%s" % aid)
        self.assertStatus(r, 200)
        acc = dict(r.json)
        for f in acc["folders"]:
            self.assertEqual(set(f), {"name", "total", "unread"}, f)
            self.assertEqual((f["total"], f["unread"]), (0, 0), f)
        acc["folders"] = [f["name"] for f in acc["folders"]]
        return acc

    def list(self, query=""):
        r = self.http.get("/api/accounts" + query)
        self.assertStatus(r, 200)
        self.assertEqual(set(r.json), {"accounts"}, r)
        self.assertIsInstance(r.json["accounts"], list)
        return r.json["accounts"]

    def assertAccount(self, acc, body):
        """acc is the public view of an account made from body."""
        self.assertEqual(set(acc), ACCOUNT_KEYS, acc)
        self.assertIsInstance(acc["id"], str)
        self.assertTrue(acc["id"])
        for k in ("emailAddress", "imapHost", "imapPort", "security", "username"):
            self.assertEqual(acc[k], body[k], k)
        self.assertEqual(acc["folders"], body.get("folders", ["INBOX"]))
        self.assertIs(acc["tlsVerify"], body.get("tlsVerify", True))
        self.assertEqual(acc["watchFolders"], body.get("watchFolders", ["INBOX"]))
        if acc["watchFolders"] == []:
            self.assertEqual(acc["watch"]["state"], "off", acc)
        self.assertIsoUtc(acc["watch"]["since"])
        self.assertIsoUtc(acc["createdAt"])
        self.assertIsoUtc(acc["updatedAt"])


class AccountsTest(AccountsTestBase):
    def test_create_get_list_patch_delete(self):
        body = account_body(1, folders=["INBOX", "Archive"])
        acc = self.create(body)
        self.assertAccount(acc, body)
        self.assertEqual(acc["syncStatus"], "idle")
        self.assertIsNone(acc["errorMessage"])
        self.assertIsNone(acc["lastSyncedAt"])
        self.assertIsoUtc(acc["nextSyncAt"])
        self.assertEqual(acc["consecutiveFailures"], 0)
        aid = acc["id"]
        self.assertEqual(self.get(aid), acc)
        listed = [a for a in self.list() if a["id"] == aid]
        self.assertEqual(listed, [acc])

        r = self.http.patch("/api/accounts/%s" % aid,
                            {"imapPort": 143, "security": "starttls",
                             "folders": ["INBOX", "Sent", "Drafts"]})
        self.assertStatus(r, 200)
        self.assertEqual(r.json["id"], aid)
        self.assertEqual(r.json["imapPort"], 143)
        self.assertEqual(r.json["security"], "starttls")
        self.assertEqual(r.json["folders"], ["INBOX", "Sent", "Drafts"])
        self.assertEqual(r.json["emailAddress"], body["emailAddress"])
        self.assertEqual(r.json["createdAt"], acc["createdAt"])
        got = self.get(aid)
        self.assertEqual(got, r.json)
        self.assertEqual(got["imapPort"], 143)
        self.assertEqual(got["folders"], ["INBOX", "Sent", "Drafts"])

        r = self.http.delete("/api/accounts/%s" % aid)
        self.assertStatus(r, 200)
        self.assertEqual(r.json, {"deleted": True})
        r = self.http.get("/api/accounts/%s" % aid)
        self.assertStatus(r, 404)
        self.assertEqual(r.json, {"error": "Account not found"})
        self.assertNotIn(aid, [a["id"] for a in self.list()])
        for method, path, b in (("DELETE", "/api/accounts/%s" % aid, None),
                                ("PATCH", "/api/accounts/%s" % aid, {"imapPort": 1}),
                                ("POST", "/api/accounts/%s/sync" % aid, None)):
            r = self.http.request(method, path, b)
            self.assertStatus(r, 404)
            self.assertEqual(r.json, {"error": "Account not found"})

    def test_defaults(self):
        body = account_body(2)
        del body["folders"], body["tlsVerify"], body["watchFolders"]
        acc = self.create(body)
        self.assertEqual(acc["folders"], ["INBOX"])
        self.assertEqual(acc["watchFolders"], ["INBOX"])
        self.assertIs(acc["tlsVerify"], True)
        body = account_body(3, security="none", tlsVerify=False, imapPort=143)
        acc = self.create(body)
        self.assertAccount(acc, body)

    def test_status_filter(self):
        made = [self.create(account_body(10 + i))["id"] for i in range(3)]
        self.assertEqual(self.list("?status=error"), [])
        self.assertEqual(self.list("?status=auth_error"), [])
        idle = {a["id"]: a for a in self.list("?status=idle")}
        for aid in made:
            self.assertIn(aid, idle)
            self.assertEqual(idle[aid]["syncStatus"], "idle")
        for a in self.list():
            if a["id"] in made:
                self.assertEqual(a["syncStatus"], "idle")
        for bad in ("bogus", "", "ERROR", "idle,error", "error%20"):
            r = self.http.get("/api/accounts?status=%s" % bad)
            self.assertJsonError(r, 400, r"status")

    def test_sync_now(self):
        aid = self.create(account_body(20))["id"]
        # No body and no Content-Type at all.
        r = self.http.request("POST", "/api/accounts/%s/sync" % aid)
        self.assertStatus(r, 202)
        self.assertEqual(set(r.json), {"progressId", "queued"})
        self.assertIsInstance(r.json["progressId"], str)
        self.assertTrue(r.json["progressId"])
        self.assertIs(r.json["queued"], True)
        first = r.json["progressId"]
        self.assertEqual(self.get(aid)["syncStatus"], "queued")
        # Already queued: not queued twice; the sync that will run reports
        # under the same progress id.
        r = self.http.request("POST", "/api/accounts/%s/sync" % aid, b"",
                              headers={"Content-Type": "application/json"})
        self.assertStatus(r, 202)
        self.assertIs(r.json["queued"], False)
        self.assertEqual(r.json["progressId"], first)
        self.assertEqual(self.get(aid)["syncStatus"], "queued")
        self.assertIn(aid, [a["id"] for a in self.list("?status=queued")])
        self.assertNotIn(aid, [a["id"] for a in self.list("?status=idle")])

    def test_token_and_methods(self):
        aid = self.create(account_body(30))["id"]
        for method, path, body in (("GET", "/api/accounts", None),
                                   ("POST", "/api/accounts", account_body(31)),
                                   ("GET", "/api/accounts/%s" % aid, None),
                                   ("PATCH", "/api/accounts/%s" % aid, {"imapPort": 1}),
                                   ("DELETE", "/api/accounts/%s" % aid, None),
                                   ("POST", "/api/accounts/%s/sync" % aid, None)):
            for token in (None, "wrong-token", TOKEN + "x"):
                r = self.http.request(method, path, body, token=token)
                self.assertJsonError(r, 401, r"token")
                self.assertTrue(r.headers.get("WWW-Authenticate", "").startswith("Bearer"))
        # The cron secret is not an API token.
        r = self.http.get("/api/accounts", token=self.stack.cron_secret)
        self.assertStatus(r, 401)
        acc = self.get(aid)
        self.assertEqual(acc["imapPort"], 993)
        self.assertEqual(acc["syncStatus"], "idle")
        self.assertNotIn("user31@example.com", [a["emailAddress"] for a in self.list()])
        r = self.http.put("/api/accounts/%s" % aid, {"imapPort": 1})
        self.assertJsonError(r, 405, r"method|allowed")
        self.assertIn("PATCH", r.headers.get("Allow", ""))
        r = self.http.request("DELETE", "/api/accounts")
        self.assertJsonError(r, 405, r"method|allowed")
        r = self.http.get("/api/accounts/%s/sync" % aid)
        self.assertJsonError(r, 405, r"method|allowed")
        for bad in ("bad%24id", "x" * 129, "a%20b"):
            r = self.http.get("/api/accounts/%s" % bad)
            self.assertJsonError(r, 400, r"\bid\b")


class AccountsBadInputTest(AccountsTestBase):
    def assertNothingStored(self, before):
        after = self.list()
        self.assertEqual(len(after), len(before))
        self.assertEqual(sorted(a["id"] for a in after), sorted(a["id"] for a in before))

    def test_bad_fields_are_400_naming_the_field(self):
        self.create(account_body(100))
        before = self.list()
        ok = account_body(101)
        no_password = dict(ok)
        del no_password["password"]
        cases = [
            ({"emailAddress": "no-at-sign"}, "emailAddress"),
            ({"emailAddress": "a@"}, "emailAddress"),
            ({"emailAddress": "@example.com"}, "emailAddress"),
            ({"emailAddress": "a" * 290 + "@example.com"}, "emailAddress"),
            ({"emailAddress": 7}, "emailAddress"),
            ({"imapHost": ""}, "imapHost"),
            ({"imapHost": "h" * 254}, "imapHost"),
            ({"imapPort": 0}, "imapPort"),
            ({"imapPort": 65536}, "imapPort"),
            ({"imapPort": -993}, "imapPort"),
            ({"imapPort": "993"}, "imapPort"),
            ({"imapPort": 993.5}, "imapPort"),
            ({"security": "ssl"}, "security"),
            ({"security": "TLS "}, "security"),
            ({"security": None}, "security"),
            ({"username": ""}, "username"),
            ({"username": "u" * 257}, "username"),
            ({"password": ""}, "password"),
            ({"password": "p" * 2000}, "password"),
            ({"password": 12345678}, "password"),
            ({"folders": "INBOX"}, "folders"),
            ({"folders": []}, "folders"),
            ({"folders": ["F%d" % i for i in range(40)]}, "folders"),
            ({"folders": ["f" * 300]}, "folders"),
            ({"folders": [""]}, "folders"),
            ({"folders": [7]}, "folders"),
            ({"watchFolders": "INBOX"}, "watchFolders"),
            ({"watchFolders": [""]}, "watchFolders"),
            ({"watchFolders": ["F%d" % i for i in range(40)]}, "watchFolders"),
            ({"tlsVerify": "yes"}, "tlsVerify"),
            ({"tlsVerify": 1}, "tlsVerify"),
            ({"colour": "red"}, "colour"),
        ]
        for over, field in cases:
            body = dict(ok, **over)
            with self.subTest(field=field, value=repr(over)[:80]):
                r = self.http.post("/api/accounts", body)
                self.assertJsonError(r, 400, field)
        for field in ("emailAddress", "imapHost", "imapPort", "security", "username",
                      "password"):
            body = dict(ok)
            del body[field]
            with self.subTest(missing=field):
                self.assertJsonError(self.http.post("/api/accounts", body), 400, field)
        r = self.http.request("POST", "/api/accounts", b'{"emailAddress": "a@b.c",',
                              headers={"Content-Type": "application/json"})
        self.assertJsonError(r, 400, r"malformed JSON")
        self.assertJsonError(self.http.post("/api/accounts", [ok]), 400, r"object")
        r = self.http.request("POST", "/api/accounts", b"",
                              headers={"Content-Type": "application/json"})
        self.assertJsonError(r, 400, r"empty")
        r = self.http.request("POST", "/api/accounts", "x", headers={"Content-Type": "text/plain"})
        self.assertJsonError(r, 415, r"Content-Type")
        self.assertNothingStored(before)

    def test_bad_updates_change_nothing(self):
        body = account_body(110)
        acc = self.create(body)
        aid = acc["id"]
        cases = [
            ({"imapPort": 0}, "imapPort"),
            ({"imapPort": 70000}, "imapPort"),
            ({"security": "ssl"}, "security"),
            ({"emailAddress": "no-at-sign"}, "emailAddress"),
            ({"password": ""}, "password"),
            ({"folders": []}, "folders"),
            ({"watchFolders": ["f" * 300]}, "watchFolders"),
            ({"tlsVerify": "no"}, "tlsVerify"),
            ({"id": "other"}, r"\bid\b"),
            ({"syncStatus": "ok"}, "syncStatus"),
            ({"imapPort": 143, "colour": "red"}, "colour"),
        ]
        for fields, name in cases:
            with self.subTest(fields=fields):
                r = self.http.patch("/api/accounts/%s" % aid, fields)
                self.assertJsonError(r, 400, name)
        r = self.http.request("PATCH", "/api/accounts/%s" % aid, b"{oops",
                              headers={"Content-Type": "application/json"})
        self.assertJsonError(r, 400, r"malformed JSON")
        self.assertEqual(self.get(aid), acc)

    def test_ten_megabyte_body_is_413(self):
        self.create(account_body(120))
        before = self.list()
        data = ('{"emailAddress":"big@example.com","imapHost":"h","imapPort":993,'
                '"security":"tls","username":"u","password":"%s"}'
                % ("p" * (10 * 1024 * 1024))).encode()
        self.assertGreater(len(data), 10 * 1024 * 1024)
        for method, path in (("POST", "/api/accounts"),
                             ("PATCH", "/api/accounts/%s" % before[0]["id"])):
            status, head, doc = raw_request(self.stack.http_port, method, path, data,
                                            headers={"Authorization": "Bearer " + TOKEN})
            self.assertEqual(status, 413, (head, doc))
            self.assertRegex(doc["error"], r"(?i)too large")
        # Without a token the answer is 401: the body is never read.
        status, head, doc = raw_request(self.stack.http_port, "POST", "/api/accounts", data)
        self.assertEqual(status, 401, (head, doc))
        self.assertNothingStored(before)
        self.assertEqual(self.get(before[0]["id"]), before[0])


class AccountsHostPolicyTest(AccountsTestBase):
    """Without IMAP_ALLOW_HOSTS nor IMAP_ALLOW_INSECURE: metadata, private
    and loopback hosts (literal or resolved) and insecure modes are 400
    naming the field, the address and the setting, and nothing changes."""
    STACK_ENV = {"API_TOKEN": TOKEN, "IMAP_ALLOW_HOSTS": "", "IMAP_ALLOW_INSECURE": "false",
                 "IMAP_DENY_HOSTS": "203.0.113.0/24"}

    def test_refused_hosts_are_400(self):
        acc = self.create(account_body(200))
        before = self.list()
        cases = [
            ("169.254.169.254", r"field \"imapHost\": host 169\.254\.169\.254 is a link-local or "
                                r"metadata address; never connected to"),
            ("[fd00:ec2::254]", r"fd00:ec2::254 is a metadata address"),
            ("100.100.100.200", r"metadata address"),
            ("10.1.2.3", r"host 10\.1\.2\.3 is a private address; refused unless "
                         r"IMAP_ALLOW_HOSTS allows it"),
            ("192.168.1.1", r"private address.*IMAP_ALLOW_HOSTS"),
            ("127.0.0.1", r"loopback address.*IMAP_ALLOW_HOSTS"),
            ("localhost", r"host localhost resolves to (127\.0\.0\.1|::1), a loopback address; "
                          r"refused unless IMAP_ALLOW_HOSTS"),
            ("203.0.113.9", r"listed in IMAP_DENY_HOSTS"),
        ]
        for host, msg in cases:
            with self.subTest(host=host):
                r = self.http.post("/api/accounts", account_body(201, imapHost=host))
                self.assertJsonError(r, 400, msg)
                r = self.http.patch("/api/accounts/%s" % acc["id"], {"imapHost": host})
                self.assertJsonError(r, 400, msg)
        self.assertEqual(len(self.list()), len(before))
        self.assertEqual(self.get(acc["id"])["imapHost"], "imap.example.com")
        # A public address, and a name that does not resolve (yet), pass.
        self.create(account_body(202, imapHost="93.184.216.34"))
        self.create(account_body(203, imapHost="no-such-host.invalid"))

    def test_insecure_modes_are_400(self):
        acc = self.create(account_body(210))
        for over, msg in (({"security": "none", "imapPort": 143},
                           r"field \"security\": \"none\" sends the password in clear; refused "
                           r"unless IMAP_ALLOW_INSECURE=true"),
                          ({"tlsVerify": False},
                           r"field \"tlsVerify\": false accepts any server's certificate; refused "
                           r"unless IMAP_ALLOW_INSECURE=true")):
            with self.subTest(over=over):
                self.assertJsonError(self.http.post("/api/accounts", account_body(211, **over)),
                                     400, msg)
                self.assertJsonError(self.http.patch("/api/accounts/%s" % acc["id"], over), 400,
                                     msg)
        after = self.get(acc["id"])
        self.assertEqual((after["security"], after["tlsVerify"]), ("tls", True))


class AccountsHostPolicyAllowedTest(AccountsTestBase):
    """What IMAP_ALLOW_HOSTS and IMAP_ALLOW_INSECURE allow, and what they
    cannot."""
    STACK_ENV = {"API_TOKEN": TOKEN, "IMAP_ALLOW_HOSTS": "10.0.0.0/8, localhost",
                 "IMAP_ALLOW_INSECURE": "true"}

    def test_allowed(self):
        self.create(account_body(220, imapHost="10.1.2.3"))
        self.create(account_body(221, imapHost="localhost"))
        self.create(account_body(222, imapHost="10.1.2.4", security="none", imapPort=143))
        self.create(account_body(223, imapHost="10.1.2.5", tlsVerify=False))
        self.assertJsonError(self.http.post("/api/accounts", account_body(224, imapHost="127.0.0.1")),
                             400, r"IMAP_ALLOW_HOSTS")
        self.assertJsonError(
            self.http.post("/api/accounts", account_body(225, imapHost="169.254.169.254")), 400,
            r"never connected to")


class AccountsSecretTest(AccountsTestBase):
    STACK_ENV = {"API_TOKEN": TOKEN, "LOG_LEVEL": "debug"}

    def test_password_never_leaves(self):
        passwords = ["S3cret-%s" % os.urandom(12).hex(), "pässwörd with spaces ✓",
                     "short-pw", "p" * 1024]
        ids = []
        replies = []
        for i, pw in enumerate(passwords):
            r = self.http.post("/api/accounts", account_body(200 + i, password=pw))
            self.assertStatus(r, 201)
            replies.append(r.raw)
            ids.append(r.json["id"])
        # An update of the password, then a sync request.
        new_pw = "rotated-%s" % os.urandom(12).hex()
        passwords.append(new_pw)
        r = self.http.patch("/api/accounts/%s" % ids[0], {"password": new_pw})
        self.assertStatus(r, 200)
        replies.append(r.raw)
        r = self.http.post("/api/accounts/%s/sync" % ids[1])
        self.assertStatus(r, 202)
        replies.append(r.raw)
        for aid in ids:
            replies.append(self.http.get("/api/accounts/%s" % aid).raw)
        for q in ("", "?status=idle", "?status=queued"):
            r = self.http.get("/api/accounts" + q)
            self.assertStatus(r, 200)
            replies.append(r.raw)
        listed = {a["id"] for a in self.list()}
        self.assertTrue(set(ids) <= listed)
        for raw in replies:
            text = raw.decode("utf-8")
            self.assertNotIn("password", text.lower())
            for pw in passwords:
                for form in encodings(pw):
                    self.assertNotIn(form, text)
                # JSON may escape non-ASCII characters.
                self.assertNotIn(json.dumps(pw)[1:-1], text)
        # Nor in the logs of any service (at debug level).
        for svc in self.stack.services():
            log = read_tail(svc.log_path, 10 * 1024 * 1024)
            for pw in passwords:
                for form in encodings(pw):
                    self.assertNotIn(form, log, "%s log" % svc.name)


if __name__ == "__main__":
    unittest.main()
