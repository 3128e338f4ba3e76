"""
Submission (RFC 6409, RFC 8314, RFC 4954) against the real daemon:

  - authentication: AUTH only inside TLS and only on submission ports,
    wrong passwords delayed and throttled per client address and per
    account, the password never in the log;
  - who may send what: MAIL FROM and the From field must be the user's own
    addresses; no open relay (port 25 never queues mail for outside
    domains; submission without AUTH refuses MAIL);
  - end to end with real clients (swaks over STARTTLS on the submission
    port, smtplib over implicit TLS): the message is DKIM-signed twice
    (RSA and Ed25519, keys from `postern dkim keygen`), Date and
    Message-ID are added when missing, and dkimpy verifies both the queued
    copy and the copy delivered locally, with its DNS asking a loopback
    server that serves the published records.

The queued copy is read through queued.queued_messages(), which asks
`postern queue list --json` and `postern queue cat` (tests/lib/queued.py).
"""
import base64
import re
import smtplib
import ssl
import subprocess
import time

import dkim  # dkimpy
import pytest

from dnsserver import DnsServer
from dkimtest import record_strings, dnsfunc_for
from mailfile import to_lf
from posterntest import free_port
from queued import queued_messages
from smtpconn import SMTPConn, client_tls_context

PASSWORD = "correct horse battery staple"
ALICE = "alice@example.test"


class Submission:
    """A daemon with submission (STARTTLS) and submissions (implicit TLS)
    listeners, alice's password, and dual DKIM keys for example.test
    published on a loopback DNS server."""

    def __init__(self, factory, submission=None, keys=True):
        self.sub_port, self.subs_port = free_port(), free_port()
        cfg = {"submission": dict({
            "listen": "127.0.0.1:%d, [::1]:%d" % (self.sub_port, self.sub_port),
            "submissions_listen": "127.0.0.1:%d" % self.subs_port,
            "auth_failure_delay": "300ms",
        }, **(submission or {}))}
        self.pt = factory(config=cfg, start=False)
        p = self.pt.cli("user", "passwd", ALICE, "--password-stdin", input=PASSWORD + "\n")
        assert p.returncode == 0, p.stderr
        self.zones = {}
        if keys:
            for sel, alg in (("rsa2026", "rsa"), ("ed2026", "ed25519")):
                p = self.pt.cli("dkim", "keygen", "--domain", "example.test", "--selector", sel, "--algorithm", alg)
                assert p.returncode == 0, p.stderr
                name, strings = record_strings(p.stdout)
                self.zones[name] = [("TXT", strings)]
        self.dns = DnsServer(self.zones)
        self.dns.start()
        self.pt.start()

    def close(self):
        self.dns.stop()

    def connect(self, port=None, host="127.0.0.1"):
        c = SMTPConn(host, port or self.sub_port, timeout=10)
        assert c.greeting.code == 220, c.greeting
        return c

    def login(self, c, user=ALICE, password=PASSWORD, ehlo=True):
        if ehlo:
            assert c.ehlo().code == 250
        return c.cmd("AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode())

    def tls_session(self, host="127.0.0.1"):
        c = self.connect(host=host)
        assert c.ehlo().code == 250
        c.starttls()
        assert c.ehlo().code == 250
        return c


@pytest.fixture
def sub(postern_factory):
    s = Submission(postern_factory)
    yield s
    s.close()


def message(frm=ALICE, to="friend@outside.example", subject="hello", extra=b"", date=True):
    head = b"From: Alice <%s>\r\nTo: <%s>\r\nSubject: %s\r\n" % (frm.encode(), to.encode(), subject.encode())
    if date:
        head += b"Date: Mon, 1 Jun 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\n"
    return head + extra + b"MIME-Version: 1.0\r\n\r\nHello there,\r\n\r\n  spaced  line\t\r\n-- \r\nAlice\r\n"


# ---- authentication -------------------------------------------------------------

def test_auth_refused_without_tls(sub):
    with sub.connect() as c:
        ehlo = c.ehlo()
        assert "250-STARTTLS" in ehlo.lines and not any("AUTH" in l for l in ehlo.lines), ehlo
        creds = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + PASSWORD.encode()).decode()
        assert c.cmd("AUTH PLAIN " + creds) == "538 5.7.11 Encryption required for requested authentication mechanism"
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == "530 5.7.0 Must issue a STARTTLS command first"
        c.starttls()
        ehlo = c.ehlo()
        assert "250-AUTH PLAIN LOGIN" in ehlo.lines, ehlo
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == "530 5.7.0 Authentication required"
        assert sub.login(c, ehlo=False) == "235 2.7.0 Authentication successful"
        assert c.cmd("AUTH PLAIN " + creds) == "503 5.5.1 Error: already authenticated"
    assert queued_messages(sub.pt) == []


def test_port_25_has_no_auth_and_never_relays(sub):
    pt = sub.pt
    with pt.session() as c:
        c.starttls()
        ehlo = c.ehlo()
        assert not any("AUTH" in l for l in ehlo.lines), ehlo
        assert c.cmd("AUTH PLAIN AGFsaWNlAHg=") == \
            "502 5.5.1 Error: AUTH not available on this port; use submission (587 or 465)"
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == "250 2.1.0 Ok"
        assert c.cmd("RCPT TO:<friend@outside.example>") == "554 5.7.1 <friend@outside.example>: Relay access denied"
        assert c.cmd("RCPT TO:<bob@example.test>") == "250 2.1.5 Ok"
        assert c.cmd("DATA").code == 354
        c.send(message(to="friend@outside.example") + b".\r\n")
        assert c.reply().code == 250
    assert queued_messages(pt) == []
    assert len(pt.messages("bob@example.test")) == 1


def test_login_mechanism_and_cancel(sub):
    with sub.tls_session() as c:
        assert c.cmd("AUTH LOGIN") == "334 VXNlcm5hbWU6"
        assert c.cmd("*") == "501 5.0.0 Authentication cancelled"
        assert c.cmd("AUTH PLAIN") == "334 "
        assert c.cmd("not base64!") == "501 5.5.2 Error: cannot decode the response (base64)"
        assert c.cmd("AUTH CRAM-MD5") == "504 5.5.4 Unrecognized authentication mechanism"
        assert c.cmd("AUTH LOGIN " + base64.b64encode(ALICE.encode()).decode()) == "334 UGFzc3dvcmQ6"
        assert c.cmd(base64.b64encode(PASSWORD.encode()).decode()) == "235 2.7.0 Authentication successful"
    assert re.search(r"event=auth auth=ok user=alice@example.test mech=LOGIN", sub.pt.log())


def test_wrong_passwords_are_delayed_and_throttled(postern_factory):
    s = Submission(postern_factory, {"auth_max_failures": "3", "auth_lockout": "1h"}, keys=False)
    try:
        # The account: two failures from 127.0.0.1, one from ::1: locked,
        # although neither address is.
        for host in ("127.0.0.1", "127.0.0.1", "::1"):
            with s.tls_session(host) as c:
                t0 = time.monotonic()
                assert s.login(c, password="wrong guess", ehlo=False) == "535 5.7.8 Authentication credentials invalid"
                assert time.monotonic() - t0 >= 0.3
        with s.tls_session("::1") as c:
            assert s.login(c, ehlo=False) == \
                "454 4.7.0 Too many failed authentications for this account, try again later"
        # The client address: a third failure from 127.0.0.1 (another
        # account) locks it out: 421 and the connection closes, and stays so.
        with s.tls_session() as c:
            assert s.login(c, user="nobody@example.test", ehlo=False).code == 421
            c.wait_closed(5)
        with s.tls_session() as c:
            r = s.login(c, user="bob@example.test", password="x", ehlo=False)
            assert r == "421 4.7.0 mx.example.test Too many failed authentications from your address, " \
                        "closing connection", r
        log = s.pt.log()
        assert len(re.findall(r"event=auth auth=fail user=alice@example.test mech=PLAIN", log)) == 3, log
        assert "wrong guess" not in log and PASSWORD not in log
        assert "correct horse" not in log
    finally:
        s.close()


def test_sending_as_someone_else_is_refused(sub):
    with sub.tls_session() as c:
        assert sub.login(c, ehlo=False).code == 235
        r = c.cmd("MAIL FROM:<bob@example.test>")
        assert r == "550 5.7.1 Sender address <bob@example.test> is not yours: alice@example.test may send only " \
                    "as its own addresses", r
        assert c.cmd("MAIL FROM:<>").code == 550
        # Sub-addresses and aliases that lead to alice are hers.
        assert c.cmd("MAIL FROM:<alice+lists@example.test>") == "250 2.1.0 Ok"
        assert c.cmd("RSET").code == 250
        # The From field is checked too.
        assert c.cmd("MAIL FROM:<%s>" % ALICE) == "250 2.1.0 Ok"
        assert c.cmd("RCPT TO:<friend@outside.example>") == "250 2.1.5 Ok"
        assert c.cmd("DATA").code == 354
        c.send(message(frm="bob@example.test") + b".\r\n")
        r = c.reply()
        assert r == "550 5.7.1 From address <bob@example.test> is not yours: alice@example.test may send only " \
                    "as its own addresses", r
    assert queued_messages(sub.pt) == []


def test_sender_policy_any(postern_factory):
    s = Submission(postern_factory, {"sender": "any"}, keys=False)
    try:
        with s.tls_session() as c:
            assert s.login(c, ehlo=False).code == 235
            assert c.cmd("MAIL FROM:<bob@example.test>") == "250 2.1.0 Ok"
    finally:
        s.close()


# ---- end to end -------------------------------------------------------------------

def local_copies(pt, address):
    """The raw Maildir files of address (our own users' mail has no
    Authentication-Results, which mailfile.StoredMessage expects)."""
    return [p.read_bytes() for p in pt.message_files(address)]


def assert_dual_signed(data, dnsfunc):
    """Both signatures (RSA first or not) verify with dkimpy."""
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    sigs = re.findall(rb"(?im)^DKIM-Signature:.*?\ba=([\w-]+)", data)
    assert sorted(sigs) == [b"ed25519-sha256", b"rsa-sha256"], data[:2000]
    for i in range(2):
        assert dkim.DKIM(data).verify(idx=i, dnsfunc=dnsfunc), "signature %d does not verify:\n%s" % (i, data[:3000])


def test_swaks_starttls_signed_queued_and_delivered(sub):
    p = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % sub.sub_port, "--tls", "--auth", "PLAIN",
                        "--auth-user", ALICE, "--auth-password", PASSWORD, "--from", ALICE,
                        "--to", "friend@outside.example,bob@example.test", "--h-From", "Alice <%s>" % ALICE,
                        "--h-Subject", "via swaks", "--body", "Hello from swaks.\n"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert re.search(r"<~  250 2\.0\.0 Ok: queued as \S+", p.stdout), p.stdout
    q = queued_messages(sub.pt)
    assert len(q) == 1, q
    assert q[0].mail_from == ALICE and q[0].rcpts == ["friend@outside.example"]
    dnsfunc = dnsfunc_for(sub.dns)
    assert_dual_signed(q[0].data, dnsfunc)
    head = q[0].data.split(b"\n\n", 1)[0]
    assert b"(Authenticated sender: alice@example.test)" in head
    assert b"Authentication-Results" not in head and b"Received-SPF" not in head
    assert b"Return-Path" not in head
    local = local_copies(sub.pt, "bob@example.test")
    assert len(local) == 1
    assert local[0].startswith(b"Return-Path: <alice@example.test>\n")
    assert_dual_signed(local[0].split(b"\n", 1)[1], dnsfunc)
    assert PASSWORD not in sub.pt.log()


def test_smtplib_implicit_tls_adds_date_and_message_id(sub):
    ctx = client_tls_context()
    msg = (b"From: alice@example.test\r\nTo: friend@outside.example, carol@example.test\r\n"
           b"Subject: no date, no id\r\n\r\nBody line.\r\n")
    with smtplib.SMTP_SSL("127.0.0.1", sub.subs_port, context=ctx, timeout=30) as smtp:
        smtp.ehlo("client.example.org")
        assert "PLAIN" in smtp.esmtp_features["auth"] and "LOGIN" in smtp.esmtp_features["auth"]
        smtp.user, smtp.password = ALICE, PASSWORD
        code, _ = smtp.auth("LOGIN", smtp.auth_login)
        assert code == 235
        refused = smtp.sendmail(ALICE, ["friend@outside.example", "carol@example.test"], msg)
        assert refused == {}
    q = queued_messages(sub.pt)
    assert len(q) == 1
    head = q[0].data.split(b"\n\n", 1)[0].decode()
    assert re.search(r"(?m)^Date: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000$", head), head
    assert re.search(r"(?m)^Message-ID: <\d+\.[0-9a-f]{24}@mx\.example\.test>$", head), head
    # Date and Message-ID are signed: they were added before signing.
    h = re.search(r"(?ms)^DKIM-Signature:.*?\bh=([^;]+);", head).group(1)
    assert "date" in re.sub(r"\s", "", h).lower().split(":") and "message-id" in re.sub(r"\s", "", h).lower()
    dnsfunc = dnsfunc_for(sub.dns)
    assert_dual_signed(q[0].data, dnsfunc)
    local = local_copies(sub.pt, "carol@example.test")
    assert len(local) == 1
    assert_dual_signed(local[0].split(b"\n", 1)[1], dnsfunc)


def test_no_queue_file_without_outside_recipients(sub):
    with sub.tls_session() as c:
        assert sub.login(c, ehlo=False).code == 235
        r = c.mail_transaction(ALICE, ["bob@example.test"], message(to="bob@example.test"))
        assert r.code == 250, r
    assert queued_messages(sub.pt) == []
    assert_dual_signed(local_copies(sub.pt, "bob@example.test")[0].split(b"\n", 1)[1], dnsfunc_for(sub.dns))


def test_submission_needs_tls_config(postern_factory):
    pt = postern_factory(config={"submission": {"listen": "127.0.0.1:%d" % free_port()}}, tls=False, start=False)
    p = pt.cli("config", "check")
    assert p.returncode == 1
    assert re.search(r"postern\.conf:\d+: submission needs TLS \(passwords never travel in clear\): set \[tls\] "
                     r"certificate and key, or remove listen", p.stderr), p.stderr


def test_unreadable_key_is_a_config_error(postern_factory):
    pt = postern_factory(config={"dkim": {"key_dir": "/tmp/postern-no-such-dir-%d" % free_port()}}, start=False)
    kd = pt.workdir / "keys" / "example.test"
    kd.mkdir(parents=True)
    (kd / "broken.key").write_text("not a key\n")
    pt.write_config({"dkim": {"key_dir": str(pt.workdir / "keys")}})
    p = pt.cli("config", "check")
    assert p.returncode == 1
    assert re.search(r"postern\.conf:\d+: cannot use the DKIM key .*/keys/example\.test/broken\.key", p.stderr), p.stderr
