#!/usr/bin/env python3
"""strict_imap.py - an IMAP server for tests that holds clients to the letter
of the grammar (RFC 3501/9051, RFC 7162 CONDSTORE/QRESYNC, RFC 7888
LITERAL+). Every command is parsed byte for byte; any deviation (a stray or
doubled space, a bare LF, an unescaped quote, 8-bit bytes outside a literal,
a mailbox name that is not modified UTF-7, an unknown modifier, a literal+
the server did not offer) answers BAD naming what is wrong, and is written
to the log as `BAD <reason>: <command bytes>` so a test can assert on it.
Real servers differ in how much they forgive; this one forgives nothing.

It serves what the sync-worker and the tests use: LOGIN, CAPABILITY, NOOP,
LOGOUT, ENABLE, LIST, SELECT/EXAMINE (CONDSTORE), CREATE, DELETE, APPEND,
UID SEARCH, UID FETCH (CHANGEDSINCE, VANISHED), UID STORE (UNCHANGEDSINCE),
UID EXPUNGE, IDLE (RFC 2177, when IDLE is in --capability), and XSTRICT, a test control (XSTRICT FAIL-STORE uid count
NO|BAD [code]: the next count STOREs of that UID are refused; XSTRICT
HOSTILE command mode: the next command of that name on any connection, the
last word of it (FETCH for UID FETCH), is answered as no real server would,
and its connection ends: HUGE-LITERAL (a {999999999} literal, then bytes
until the client gives up), GARBAGE (an unparsable line, then OK), STALL (no
answer at all), CLOSE (the connection closed at once), CLOSE-IN-LITERAL
(closed inside a literal), TRICKLE (the start of an answer, then one byte
every 2 s, never complete); XSTRICT GREETING mode: the next connection is
greeted so: TRICKLE (a byte every 2 s), HUGE (one line of 100 MB),
TLS-TRICKLE (on the TLS port: the greeting's TLS record a byte every 2 s)).

A session with a mailbox selected is told, on NOOP and while in IDLE, what
other sessions changed in it since it last looked: `* n EXISTS` for new
messages, `* n EXPUNGE` (`* VANISHED uids` with QRESYNC enabled) for removed
ones, `* n FETCH (UID u FLAGS (...))` for flag changes. Its own changes are
not reported back. With --idle-untagged-first, IDLE is answered with
untagged data before its `+ idling` continuation, as some servers do (and
as libetpan 1.9.4's mailimap_idle cannot take): the pending changes, then
`* n EXISTS` with the current count, then `+ idling`.

State lives in memory: mailboxes with UIDVALIDITY, UIDNEXT, mod-sequences,
flags and expunge tombstones. Usage:
  strict_imap.py --port P --log FILE --user U:PW [--user U2:PW2] [--messages N]
                 [--capability "IMAP4rev1 ..."] [--folder NAME[=\\Special]] ...
                 [--idle-untagged-first]
Folder names are given in UTF-8 and held in modified UTF-7.
"""
import argparse
import base64
import re
import select
import socketserver
import ssl
import sys
import threading
import time

ASTRING_SPECIALS = set(b'(){ %*"\\')
DEFAULT_CAPS = ("IMAP4rev1 LITERAL+ ENABLE CONDSTORE QRESYNC SPECIAL-USE UIDPLUS")
SYSTEM_FLAGS = {"\\seen": "\\Seen", "\\answered": "\\Answered", "\\flagged": "\\Flagged",
                "\\deleted": "\\Deleted", "\\draft": "\\Draft"}


class Bad(Exception):
    """A command that breaks the grammar: answered BAD with this text."""


class No(Exception):
    """A well-formed command the server refuses: answered NO."""

    def __init__(self, text, code=None):
        super().__init__(text)
        self.code = code


def mutf7_encode(name):
    out, run = [], []

    def flush():
        if run:
            b = "".join(run).encode("utf-16-be")
            out.append("&" + base64.b64encode(b).decode().rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) < 0x7F:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(name):
    """The UTF-8 form of a modified UTF-7 name; Bad when it is not one."""
    out, i = [], 0
    while i < len(name):
        c = name[i]
        if not 0x20 <= ord(c) < 0x7F:
            raise Bad("mailbox name is not modified UTF-7 (8-bit or control byte)")
        if c != "&":
            out.append(c)
            i += 1
            continue
        j = name.find("-", i + 1)
        if j < 0:
            raise Bad("mailbox name is not modified UTF-7 (unterminated &)")
        run = name[i + 1:j]
        if run == "":
            out.append("&")
        else:
            if not re.fullmatch(r"[A-Za-z0-9+,]+", run):
                raise Bad("mailbox name is not modified UTF-7 (bad base64)")
            b = base64.b64decode(run.replace(",", "/") + "=" * (-len(run) % 4))
            if len(b) % 2:
                raise Bad("mailbox name is not modified UTF-7 (odd UTF-16)")
            out.append(b.decode("utf-16-be"))
        i = j + 1
    return "".join(out)


def quote_astring(s):
    """How the server writes a mailbox name or string in its replies."""
    if s and all(0x20 < ord(c) < 0x7F and c not in '(){%*"\\' for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def nstring(b):
    if b is None:
        return b"NIL"
    if all(0x20 <= x < 0x7F for x in b):
        return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
    return b"{%d}\r\n" % len(b) + b


def message_text(fmt, n):
    """The generated message n, byte for byte as the C fixture makes it
    from fmt, the format it passes (--message-format)."""
    return (fmt % (n, n, n, (n // 60) % 60, n % 60, n, n)).encode()


def fill(box, count, fmt):
    """Adds generated messages 1..count to box; those with n % 3 == 0 seen,
    as the C fixture has them."""
    for n in range(1, count + 1):
        box.add(message_text(fmt, n), ["\\Seen"] if n % 3 == 0 else [])


def headers_of(raw):
    head = raw.split(b"\r\n\r\n", 1)[0]
    fields, cur = {}, None
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and cur:
            fields[cur] += b" " + line.strip()
            continue
        if b":" in line:
            k, v = line.split(b":", 1)
            cur = k.strip().lower()
            fields.setdefault(cur, v.strip())
    return fields


def addresses(v):
    if v is None:
        return b"NIL"
    out = []
    for part in v.split(b","):
        part = part.strip()
        m = re.match(rb"^(.*?)\s*<([^@>]+)@([^>]+)>$", part)
        if m:
            name = m.group(1).strip().strip(b'"') or None
            box, host = m.group(2), m.group(3)
        elif b"@" in part:
            name, (box, host) = None, part.split(b"@", 1)
        else:
            continue
        out.append(b"(" + nstring(name) + b" NIL " + nstring(box) + b" " + nstring(host) + b")")
    return b"(" + b"".join(out) + b")" if out else b"NIL"


def envelope(raw):
    h = headers_of(raw)
    frm = addresses(h.get(b"from"))
    return (b"(" + nstring(h.get(b"date")) + b" " + nstring(h.get(b"subject")) + b" " + frm +
            b" " + frm + b" " + frm + b" " + addresses(h.get(b"to")) + b" " +
            addresses(h.get(b"cc")) + b" NIL " + nstring(h.get(b"in-reply-to")) + b" " +
            nstring(h.get(b"message-id")) + b")")


class Message:
    def __init__(self, uid, raw, flags, modseq):
        self.uid, self.raw, self.flags, self.modseq = uid, raw, set(flags), modseq
        self.internal = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(1700000000 + uid))


class Mailbox:
    def __init__(self, name, special=None, uidvalidity=None):
        self.name = name  # modified UTF-7
        self.special = special
        self.uidvalidity = uidvalidity or int(time.time()) % 1000000 + 1
        self.uidnext = 1
        self.modseq = 1
        self.messages = []
        self.vanished = []  # (uid, modseq)

    def add(self, raw, flags):
        self.modseq += 1
        m = Message(self.uidnext, raw, flags, self.modseq)
        self.uidnext += 1
        self.messages.append(m)
        return m


class State:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.users = dict(u.split(":", 1) for u in args.user)
        self.caps = args.capability.split()
        self.idle_untagged_first = args.idle_untagged_first
        self.log = open(args.log, "a", buffering=1)
        self.boxes = {"INBOX": Mailbox("INBOX")}
        self.fail_store = {}  # uid -> [count, state, code]
        self.hostile = {}  # command name -> mode (XSTRICT HOSTILE)
        self.greeting = None  # the next connection's greeting (XSTRICT GREETING)
        fill(self.boxes["INBOX"], args.messages, args.message_format)
        for spec in args.folder:
            name, _, special = spec.partition("=")
            enc = mutf7_encode(name)
            self.boxes[enc] = Mailbox(enc, special or None)
            fill(self.boxes[enc], args.folder_messages, args.message_format)

    def say(self, text):
        self.log.write(text + "\n")


class Parser:
    """A cursor over one command's bytes, literals inlined as sent."""

    def __init__(self, data, literal_plus):
        self.d, self.i, self.literal_plus = data, 0, literal_plus

    def peek(self, n=1):
        return self.d[self.i:self.i + n]

    def at_end(self):
        return self.i == len(self.d)

    def sp(self):
        if self.peek() != b" ":
            raise Bad("expected a single space at byte %d" % self.i)
        self.i += 1
        if self.peek() == b" ":
            raise Bad("two spaces at byte %d" % self.i)

    def end(self, what):
        if not self.at_end():
            raise Bad("Unexpected extra arguments to %s" % what)

    def expect(self, token):
        if self.d[self.i:self.i + len(token)].upper() != token.upper():
            raise Bad("expected %s at byte %d" % (token.decode(), self.i))
        self.i += len(token)

    def atom(self, chars_ok=lambda c: c > 0x20 and c < 0x7F and c not in ASTRING_SPECIALS
             and c != ord("]")):
        j = self.i
        while j < len(self.d) and chars_ok(self.d[j]):
            j += 1
        if j == self.i:
            raise Bad("expected an atom at byte %d" % self.i)
        s = self.d[self.i:j]
        self.i = j
        return s

    def number(self):
        s = self.atom(lambda c: 0x30 <= c <= 0x39)
        if len(s) > 1 and s[:1] == b"0":
            raise Bad("number with a leading zero")
        return int(s)

    def quoted(self):
        self.i += 1
        out = bytearray()
        while True:
            if self.at_end():
                raise Bad("unterminated quoted string")
            c = self.d[self.i]
            if c == 0x22:
                self.i += 1
                return bytes(out)
            if c == 0x5C:
                n = self.d[self.i + 1:self.i + 2]
                if n not in (b'"', b"\\"):
                    raise Bad("backslash before a character that is not \" or \\ in a quoted"
                              " string")
                out += n
                self.i += 2
                continue
            if c > 0x7F or c in (0x0D, 0x0A, 0):
                raise Bad("8-bit or CR/LF byte in a quoted string (a literal is needed)")
            out.append(c)
            self.i += 1

    def literal(self):
        m = re.match(rb"\{(\d+)(\+?)\}\r\n", self.d[self.i:])
        if not m:
            raise Bad("malformed literal at byte %d" % self.i)
        if m.group(2) and not self.literal_plus:
            raise Bad("non-synchronizing literal without LITERAL+")
        n = int(m.group(1))
        self.i += m.end()
        s = self.d[self.i:self.i + n]
        if len(s) != n or b"\0" in s:
            raise Bad("literal shorter than announced or holding NUL")
        self.i += n
        return s

    def string(self):
        c = self.peek()
        if c == b'"':
            return self.quoted()
        if c == b"{":
            return self.literal()
        raise Bad("expected a string at byte %d" % self.i)

    def astring(self):
        if self.peek() in (b'"', b"{"):
            return self.string()
        return self.atom(lambda c: c > 0x20 and c < 0x7F and c not in ASTRING_SPECIALS)

    def mailbox(self):
        raw = self.astring()
        try:
            name = raw.decode("ascii")
        except UnicodeDecodeError:
            raise Bad("mailbox name is not modified UTF-7 (8-bit bytes)")
        mutf7_decode(name)
        return "INBOX" if name.upper() == "INBOX" else name

    def seq_number(self):
        if self.peek() == b"*":
            self.i += 1
            return None
        n = self.number()
        if n == 0:
            raise Bad("0 is not a valid sequence number")
        return n

    def sequence_set(self):
        ranges = []
        while True:
            a = self.seq_number()
            b = a
            if self.peek() == b":":
                self.i += 1
                b = self.seq_number()
            ranges.append((a, b))
            if self.peek() != b",":
                return ranges
            self.i += 1

    def flag_list(self):
        if self.peek() != b"(":
            raise Bad("expected a flag list")
        self.i += 1
        flags = []
        while self.peek() != b")":
            if flags:
                self.sp()
            if self.peek() == b"\\":
                self.i += 1
                f = "\\" + self.atom().decode()
                if f.lower() not in SYSTEM_FLAGS:
                    raise Bad("unknown system flag %s" % f)
                f = SYSTEM_FLAGS[f.lower()]
            else:
                f = self.atom().decode()
            flags.append(f)
        self.i += 1
        return flags


def in_set(uid, ranges, top):
    for a, b in ranges:
        a = top if a is None else a
        b = top if b is None else b
        if min(a, b) <= uid <= max(a, b):
            return True
    return False


def uid_set_text(uids):
    uids = sorted(uids)
    out, i = [], 0
    while i < len(uids):
        j = i
        while j + 1 < len(uids) and uids[j + 1] == uids[j] + 1:
            j += 1
        out.append(str(uids[i]) if i == j else "%d:%d" % (uids[i], uids[j]))
        i = j + 1
    return ",".join(out)


class Session(socketserver.StreamRequestHandler):
    state = None  # the server's State, set at start

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(data)
        self.wfile.flush()

    def read_command(self):
        """The command's bytes up to its final CRLF, with literals inline."""
        buf = b""
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return None
            if not line.endswith(b"\r\n"):
                buf += line
                raise Bad("line not ended by CRLF")
            buf += line
            m = re.search(rb"\{(\d+)(\+?)\}\r\n$", line)
            if not m:
                return buf[:-2]
            n = int(m.group(1))
            if n > 10 * 1024 * 1024:
                raise Bad("literal too large")
            if not m.group(2):
                self.send("+ Ready for literal data\r\n")
            buf += self.rfile.read(n)
            if len(buf) > 20 * 1024 * 1024:
                raise Bad("command too long")

    def start_tls(self):
        """Wraps the connection in TLS (implicit, or after STARTTLS) and
        logs the name the client asked for by SNI."""
        self.wfile.flush()
        self.request = self.state.tls.wrap_socket(self.request, server_side=True)
        self.rfile = self.request.makefile("rb")
        self.wfile = self.request.makefile("wb")

    def tls_trickle(self):
        """Completes the TLS handshake, then sends the greeting's TLS record
        a byte every 2 s: the client's TLS layer waits inside one read."""
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.state.tls.wrap_bio(inc, out, server_side=True)
        sock = self.request
        try:
            while True:
                try:
                    obj.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    sock.sendall(out.read())
                    data = sock.recv(65536)
                    if not data:
                        return
                    inc.write(data)
            sock.sendall(out.read())
            obj.write(b"* OK trickled at the TLS layer\r\n")
            for b in out.read():
                sock.sendall(bytes([b]))
                time.sleep(2)
            while sock.recv(65536):
                pass
        except (ssl.SSLError, OSError):
            pass

    def handle(self):
        st = self.state
        with st.lock:
            greeting, st.greeting = st.greeting, None
        if greeting == "TLS-TRICKLE" and self.server.server_address[1] == st.tls_port:
            st.say("hostile greeting TLS-TRICKLE")
            return self.tls_trickle()
        if self.server.server_address[1] == st.tls_port:
            try:
                self.start_tls()
            except (ssl.SSLError, OSError) as e:
                st.say("TLS handshake failed: %s" % e)
                return
        self.authed = False
        self.selected = None
        self.readonly = False
        self.condstore = False
        self.qresync = False
        self.known = None  # the selected mailbox as this session last saw it
        if greeting:
            st.say("hostile greeting %s" % greeting)
            return self.hostile(b"*", "GREETING-" + greeting)
        self.send("* OK [CAPABILITY %s] strict test server ready\r\n" % " ".join(self.caps()))
        while True:
            tag = b"*"
            try:
                data = self.read_command()
                if data is None:
                    return
                st.say("C: %r" % (re.sub(rb"(?i)^(\S+ LOGIN ).*", rb"\1(credentials not logged)",
                                         data, flags=re.S)[:300],))
                m = re.match(rb"([\x21-\x7e]+) ", data)
                if not m or any(c in ASTRING_SPECIALS or c == ord("+") for c in m.group(1)):
                    raise Bad("malformed tag")
                tag = m.group(1)
                p = Parser(data, "LITERAL+" in self.caps())
                p.i = m.end()
                name = p.atom().upper().decode()
                if name == "UID":
                    p.sp()
                    name = "UID " + p.atom().upper().decode()
                with st.lock:
                    how = st.hostile.pop(name.split()[-1], None)
                if how:
                    st.say("hostile answer %s to %s" % (how, name))
                    return self.hostile(tag, how)
                if name == "IDLE":
                    self.idle(p, tag)
                    continue
                with st.lock:
                    done = self.dispatch(name, p, tag)
                    if name != "NOOP":
                        self.snapshot()
                if done == "bye":
                    return
            except Bad as e:
                st.say("BAD %s: %r" % (e, locals().get("data", b"")))
                self.send(b"%s BAD %s\r\n" % (tag, str(e).encode()))
            except No as e:
                code = "[%s] " % e.code if e.code else ""
                self.send(b"%s NO %s%s\r\n" % (tag, code.encode(), str(e).encode()))
            except (ConnectionError, OSError):
                return

    def hostile(self, tag, how):
        """Answers as XSTRICT HOSTILE asked (outside the lock: a stall holds
        up this connection only), then ends the connection."""
        try:
            if how == "HUGE-LITERAL":
                self.send("* 1 FETCH (UID 1 BODY[] {999999999}\r\n")
                chunk = b"x" * (1024 * 1024)
                for _ in range(96):
                    self.send(chunk)
            elif how == "GARBAGE":
                self.send(b"* 1 FETCH ((((( ]]] \x01\x02 }{\r\n%s OK done\r\n" % tag)
            elif how == "CLOSE-IN-LITERAL":
                self.send("* 1 FETCH (UID 1 BODY[] {5000}\r\nonly this")
                return
            elif how == "CLOSE":
                return
            elif how in ("TRICKLE", "GREETING-TRICKLE"):
                self.send("* OK " if how == "GREETING-TRICKLE" else "* 1 FETCH (UID 1 FLAGS (")
                while True:
                    time.sleep(2)
                    self.send("x")
            elif how == "GREETING-HUGE":
                self.send("* OK ")
                chunk = b"x" * (1024 * 1024)
                for _ in range(100):
                    self.send(chunk)
            while self.rfile.readline(65536):  # STALL, and after the others
                pass
        except (ConnectionError, OSError):
            pass

    def caps(self):
        if self.state.tls and not isinstance(self.request, ssl.SSLSocket):
            return self.state.caps + ["STARTTLS"]
        return self.state.caps

    def snapshot(self):
        """Takes the selected mailbox's state as seen (holding the lock)."""
        b = self.state.boxes.get(self.selected) if self.selected else None
        self.known = None if b is None else (
            [m.uid for m in b.messages], b.modseq)

    def report_changes(self):
        """Sends what other sessions changed since the last look (holding
        the lock)."""
        b = self.state.boxes.get(self.selected) if self.selected else None
        if b is None or self.known is None:
            return
        uids, modseq = self.known
        now = [m.uid for m in b.messages]
        gone = [u for u in uids if u not in set(now)]
        if gone and self.qresync:
            self.send("* VANISHED %s\r\n" % uid_set_text(gone))
        elif gone:
            seqs = [i + 1 for i, u in enumerate(uids) if u in set(gone)]
            for s in reversed(seqs):
                self.send("* %d EXPUNGE\r\n" % s)
        if len(now) != len(uids) - len(gone):
            self.send("* %d EXISTS\r\n" % len(now))
        old = set(uids)
        for i, m in enumerate(b.messages):
            if m.uid in old and m.modseq > modseq:
                self.send("* %d FETCH (UID %d FLAGS (%s))\r\n" %
                          (i + 1, m.uid, " ".join(sorted(m.flags))))
        self.snapshot()

    def idle(self, p, tag):
        """IDLE: changes are sent as they happen until the client's DONE."""
        st = self.state
        p.end("IDLE")
        if "IDLE" not in self.caps():
            raise Bad("IDLE is not offered")
        with st.lock:
            if st.idle_untagged_first:
                self.report_changes()
                b = st.boxes.get(self.selected) if self.selected else None
                self.send("* %d EXISTS\r\n" % (len(b.messages) if b else 0))
            self.send("+ idling\r\n")
        while True:
            r, _, _ = select.select([self.connection], [], [], 0.05)
            if r:
                line = self.rfile.readline(65536)
                if not line:
                    raise ConnectionError("closed while idling")
                st.say("C: %r" % (line[:300],))
                if line != b"DONE\r\n":
                    raise Bad("expected DONE to end IDLE")
                with st.lock:
                    self.report_changes()
                self.send(b"%s OK IDLE terminated\r\n" % tag)
                return
            with st.lock:
                self.report_changes()

    def box(self):
        if self.selected is None:
            raise Bad("no mailbox selected")
        b = self.state.boxes.get(self.selected)
        if b is None:
            raise No("the mailbox was deleted")
        return b

    def dispatch(self, name, p, tag):
        st = self.state
        ok = lambda text="completed": self.send(b"%s OK %s\r\n" % (tag, text.encode()))
        if name == "CAPABILITY":
            p.end(name)
            self.send("* CAPABILITY %s\r\n" % " ".join(self.caps()))
            return ok()
        if name == "NOOP":
            p.end(name)
            self.report_changes()
            return ok()
        if name == "STARTTLS":
            p.end(name)
            if not st.tls:
                raise Bad("STARTTLS not offered")
            ok("begin TLS")
            self.start_tls()
            return None
        if name == "LOGOUT":
            p.end(name)
            self.send("* BYE logging out\r\n")
            ok()
            return "bye"
        if name == "LOGIN":
            p.sp()
            user = p.astring()
            p.sp()
            pw = p.astring()
            p.end(name)
            want = st.users.get(user.decode("utf-8", "replace"))
            if want is None or want.encode() != pw:
                raise No("invalid credentials", "AUTHENTICATIONFAILED")
            self.authed = True
            return ok("[CAPABILITY %s] logged in" % " ".join(self.caps()))
        if not self.authed:
            raise Bad("log in first")
        if name == "XSTRICT":
            p.sp()
            control = p.atom().decode().upper()
            if control == "HOSTILE":
                p.sp()
                cmd = p.atom().decode().upper()
                p.sp()
                how = p.atom().decode().upper()
                p.end(name)
                if how not in ("HUGE-LITERAL", "GARBAGE", "STALL", "CLOSE", "CLOSE-IN-LITERAL",
                               "TRICKLE"):
                    raise Bad("unknown HOSTILE mode %s" % how)
                st.hostile[cmd] = how
                return ok()
            if control == "GREETING":
                p.sp()
                how = p.atom().decode().upper()
                p.end(name)
                if how not in ("TRICKLE", "HUGE", "TLS-TRICKLE"):
                    raise Bad("unknown GREETING mode %s" % how)
                st.greeting = how
                return ok()
            if control != "FAIL-STORE":
                raise Bad("unknown XSTRICT control %s" % control)
            p.sp()
            uid = p.number()
            p.sp()
            count = p.number()
            p.sp()
            how = p.atom().decode().upper()
            code = None
            if not p.at_end():
                p.sp()
                code = p.atom().decode()
            p.end(name)
            st.fail_store[uid] = [count, how, code]
            return ok()
        if name == "ENABLE":
            got = []
            while not p.at_end():
                p.sp()
                got.append(p.atom().decode().upper())
            if not got:
                raise Bad("ENABLE needs a capability")
            on = [c for c in got if c in ("CONDSTORE", "QRESYNC") and c in self.caps()]
            if "QRESYNC" in on:
                self.qresync = self.condstore = True
            if "CONDSTORE" in on:
                self.condstore = True
            self.send("* ENABLED%s\r\n" % "".join(" " + c for c in on))
            return ok()
        if name == "LIST":
            p.sp()
            p.string() if p.peek() in (b'"', b"{") else p.mailbox()
            p.sp()
            if p.peek() in (b'"', b"{"):
                pat = p.string().decode("ascii", "replace")
            else:
                pat = p.atom(lambda c: c > 0x20 and c < 0x7F and c not in b'(){ "\\').decode()
            p.end(name)
            for b in st.boxes.values():
                if pat in ("*", "%") or pat == b.name:
                    attrs = ["\\HasNoChildren"] + ([b.special] if b.special and
                                                   "SPECIAL-USE" in self.caps() else [])
                    self.send('* LIST (%s) "/" %s\r\n' % (" ".join(attrs), quote_astring(b.name)))
            return ok()
        if name in ("SELECT", "EXAMINE"):
            p.sp()
            mb = p.mailbox()
            cs = False
            if not p.at_end():
                p.sp()
                p.expect(b"(CONDSTORE)")
                cs = True
                if "CONDSTORE" not in self.caps():
                    raise Bad("CONDSTORE is not offered")
            p.end(name)
            self.selected = None
            b = st.boxes.get(mb)
            if b is None:
                raise No("mailbox does not exist", "NONEXISTENT")
            self.condstore = self.condstore or cs
            self.selected, self.readonly = mb, name == "EXAMINE"
            self.send("* %d EXISTS\r\n* 0 RECENT\r\n" % len(b.messages))
            self.send("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n")
            self.send("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] "
                      "ok\r\n")
            self.send("* OK [UIDVALIDITY %d] ok\r\n* OK [UIDNEXT %d] ok\r\n" %
                      (b.uidvalidity, b.uidnext))
            if self.condstore:
                self.send("* OK [HIGHESTMODSEQ %d] ok\r\n" % b.modseq)
            return ok("[%s] selected" % ("READ-ONLY" if self.readonly else "READ-WRITE"))
        if name in ("CREATE", "DELETE"):
            p.sp()
            mb = p.mailbox()
            p.end(name)
            if name == "CREATE":
                if mb in st.boxes:
                    raise No("mailbox exists", "ALREADYEXISTS")
                st.boxes[mb] = Mailbox(mb)
            else:
                if st.boxes.pop(mb, None) is None:
                    raise No("mailbox does not exist", "NONEXISTENT")
            return ok()
        if name == "APPEND":
            p.sp()
            mb = p.mailbox()
            p.sp()
            flags = []
            if p.peek() == b"(":
                flags = p.flag_list()
                p.sp()
            raw = p.literal()
            p.end(name)
            b = st.boxes.get(mb)
            if b is None:
                raise No("mailbox does not exist", "TRYCREATE")
            m = b.add(raw, flags)
            return ok("[APPENDUID %d %d] appended" % (b.uidvalidity, m.uid))
        if name == "UID SEARCH":
            b = self.box()
            p.sp()
            if p.peek(3).upper() == b"ALL":
                p.i += 3
                sel = lambda m: True
            else:
                p.expect(b"UID")
                p.sp()
                ranges = p.sequence_set()
                top = b.uidnext - 1
                sel = lambda m: in_set(m.uid, ranges, max(top, 1))
            p.end(name)
            uids = [str(m.uid) for m in b.messages if sel(m)]
            self.send("* SEARCH%s\r\n" % "".join(" " + u for u in uids))
            return ok()
        if name == "UID FETCH":
            return self.uid_fetch(p, ok)
        if name == "UID STORE":
            return self.uid_store(p, ok)
        if name == "UID EXPUNGE":
            b = self.box()
            p.sp()
            ranges = p.sequence_set()
            p.end(name)
            top = max(b.uidnext - 1, 1)
            keep = []
            for i, m in enumerate(list(b.messages)):
                if "\\Deleted" in m.flags and in_set(m.uid, ranges, top):
                    b.modseq += 1
                    b.vanished.append((m.uid, b.modseq))
                    if not self.qresync:
                        self.send("* %d EXPUNGE\r\n" % (len(keep) + 1))
                else:
                    keep.append(m)
            gone = [m.uid for m in b.messages if m not in keep]
            b.messages = keep
            if self.qresync and gone:
                self.send("* VANISHED %s\r\n" % uid_set_text(gone))
            return ok()
        raise Bad("unknown command %s" % name)

    def uid_fetch(self, p, ok):
        b = self.box()
        p.sp()
        ranges = p.sequence_set()
        p.sp()
        items = []
        if p.peek() == b"(":
            p.i += 1
            while p.peek() != b")":
                if items:
                    p.sp()
                items.append(p.atom(lambda c: c > 0x20 and c < 0x7F and c not in b'(){ "\\]')
                             .decode().upper())
            p.i += 1
        else:
            items.append(p.atom().decode().upper())
        for it in items:
            if it not in ("UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "ENVELOPE", "MODSEQ"):
                raise Bad("fetch attribute %s is not served here" % it)
        changed, vanished = None, False
        if not p.at_end():
            p.sp()
            p.expect(b"(CHANGEDSINCE ")
            changed = p.number()
            if p.peek() == b" ":
                p.sp()
                p.expect(b"VANISHED")
                vanished = True
                if not self.qresync:
                    raise Bad("VANISHED needs ENABLE QRESYNC")
            if p.peek() != b")":
                raise Bad("expected ) after the fetch modifiers")
            p.i += 1
            if "CONDSTORE" not in self.caps():
                raise Bad("CHANGEDSINCE needs CONDSTORE")
            self.condstore = True
        p.end("UID FETCH")
        top = max(b.uidnext - 1, 1)
        if vanished:
            gone = [u for u, ms in b.vanished if ms > changed and in_set(u, ranges, top)]
            if gone:
                self.send("* VANISHED (EARLIER) %s\r\n" % uid_set_text(gone))
        if "UID" not in items:
            items.insert(0, "UID")
        if changed is not None and "MODSEQ" not in items:
            items.append("MODSEQ")
        for i, m in enumerate(b.messages):
            if not in_set(m.uid, ranges, top) or (changed is not None and m.modseq <= changed):
                continue
            parts = []
            for it in items:
                if it == "UID":
                    parts.append(b"UID %d" % m.uid)
                elif it == "FLAGS":
                    parts.append(b"FLAGS (" + " ".join(sorted(m.flags)).encode() + b")")
                elif it == "RFC822.SIZE":
                    parts.append(b"RFC822.SIZE %d" % len(m.raw))
                elif it == "INTERNALDATE":
                    parts.append(b'INTERNALDATE "' + m.internal.encode() + b'"')
                elif it == "ENVELOPE":
                    parts.append(b"ENVELOPE " + envelope(m.raw))
                elif it == "MODSEQ":
                    parts.append(b"MODSEQ (%d)" % m.modseq)
            self.send(b"* %d FETCH (" % (i + 1) + b" ".join(parts) + b")\r\n")
        return ok()

    def uid_store(self, p, ok):
        st = self.state
        b = self.box()
        p.sp()
        ranges = p.sequence_set()
        p.sp()
        unchanged = None
        if p.peek() == b"(":
            p.expect(b"(UNCHANGEDSINCE ")
            unchanged = p.number()
            p.expect(b")")
            p.sp()
            if "CONDSTORE" not in self.caps():
                raise Bad("UNCHANGEDSINCE needs CONDSTORE")
            self.condstore = True
        op = p.atom().decode().upper()
        if op not in ("FLAGS", "+FLAGS", "-FLAGS", "FLAGS.SILENT", "+FLAGS.SILENT",
                      "-FLAGS.SILENT"):
            raise Bad("unknown STORE item %s" % op)
        p.sp()
        flags = p.flag_list()
        p.end("UID Store")
        if self.readonly:
            raise No("mailbox is read-only", "READ-ONLY")
        top = max(b.uidnext - 1, 1)
        modified = []
        for i, m in enumerate(b.messages):
            if not in_set(m.uid, ranges, top):
                continue
            fail = st.fail_store.get(m.uid)
            if fail and fail[0] > 0:
                fail[0] -= 1
                st.say("STORE of uid %d refused as asked" % m.uid)
                if fail[1] == "BAD":
                    raise Bad("refused as asked")
                raise No("refused as asked", fail[2])
            if unchanged is not None and m.modseq > unchanged:
                modified.append(m.uid)
                continue
            base = op.split(".")[0]
            new = (set(flags) if base == "FLAGS" else
                   m.flags | set(flags) if base == "+FLAGS" else m.flags - set(flags))
            if new != m.flags:
                b.modseq += 1
                m.flags, m.modseq = new, b.modseq
            if not op.endswith(".SILENT") or self.condstore:
                self.send("* %d FETCH (UID %d FLAGS (%s)%s)\r\n" %
                          (i + 1, m.uid, " ".join(sorted(m.flags)),
                           " MODSEQ (%d)" % m.modseq if self.condstore else ""))
        if modified:
            return ok("[MODIFIED %s] conditional store failed" % uid_set_text(modified))
        return ok()


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--user", action="append", required=True)
    ap.add_argument("--messages", type=int, default=0)
    ap.add_argument("--capability", default=DEFAULT_CAPS)
    ap.add_argument("--folder", action="append", default=[])
    ap.add_argument("--folder-messages", type=int, default=0)
    ap.add_argument("--message-format", required=True)
    ap.add_argument("--tls-port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--idle-untagged-first", action="store_true")
    args = ap.parse_args()
    st = Session.state = State(args)
    st.tls, st.tls_port = None, args.tls_port
    if args.tls_cert:
        st.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        st.tls.load_cert_chain(args.tls_cert, args.tls_key)

        def sni(sock, name, ctx):
            st.say("sni %s" % (name or "none"))

        st.tls.sni_callback = sni
    srv = Server(("127.0.0.1", args.port), Session)
    if args.tls_port:
        tls_srv = Server(("127.0.0.1", args.tls_port), Session)
        threading.Thread(target=tls_srv.serve_forever, daemon=True).start()
    st.say("listening on %d" % args.port)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
