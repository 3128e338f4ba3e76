"""
Security properties: no open relay under any address trick, no command
injection across STARTTLS (CVE-2011-0411), no STARTTLS without [tls], the
daemon runs unprivileged, and clients cannot forge log lines.
"""
import os
import re
import stat

import pytest

from mailfile import make_message
from posterntest import ensure_system_user
from replies import (BYE, DATA_GO, MAIL_OK, NEED_EHLO, NEED_MAIL, NEED_RCPT, OK, RCPT_OK, STARTTLS_GO,
                     STARTTLS_SYNTAX, STARTTLS_UNAVAILABLE, TLS_ACTIVE, ehlo_lines, relay_denied)
from smtpconn import is_queued

SENDER = "sender@example.org"

# Plainly foreign domains: the contract's exact reply.
FOREIGN = ["user@other.test", "postmaster@other.test", "demo@sub.example.test", "demo@example.test.other.test",
           "demo@mx.example.test", "user@localhost"]

# Tricks that old MTAs turned into relaying. Any refusal will do, never 250.
TRICKS = [
    "<demo@example.test@other.test>",
    "<@example.test:user@other.test>",
    "<@example.test,@relay.test:user@other.test>",
    "<user%other.test@example.test>",
    "<user%other.test@other.test>",
    '<"user@other.test"@example.test>',
    '<"user@other.test">',
    "<other.test!user@example.test>",
    "<user@other.test.>",
    "<user@[127.0.0.1]>",
    "<user@[IPv6:::1]>",
    "<USER@OTHER.TEST>",
    "user@other.test",
    "<user@other.test",
    "<user@other.test> <demo@example.test>",
]


@pytest.mark.parametrize("rcpt", FOREIGN)
def test_no_relay_to_foreign_domain(postern, rcpt):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<%s>" % rcpt) == relay_denied(rcpt)
        assert c.cmd("DATA") == NEED_RCPT
        # a sender in our own domain changes nothing
        assert c.cmd("RSET") == OK
        assert c.cmd("MAIL FROM:<demo@example.test>") == MAIL_OK
        assert c.cmd("RCPT TO:<%s>" % rcpt) == relay_denied(rcpt)
        assert c.cmd("DATA") == NEED_RCPT
    assert postern.all_message_files() == []


@pytest.mark.parametrize("rcpt", TRICKS)
def test_no_relay_tricks(postern, rcpt):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        r = c.cmd("RCPT TO:%s" % rcpt)
        assert r.code in (501, 550, 553, 554, 555), r
        assert r.lines[0][4:5] == "5", r  # an enhanced status code of permanent failure
        # nothing was accepted: DATA has no recipient
        assert c.cmd("DATA") == NEED_RCPT
        assert c.cmd("QUIT") == BYE
    assert postern.all_message_files() == []


# -- STARTTLS -----------------------------------------------------------------

@pytest.mark.parametrize("injected", [b"RSET\r\n", b"HELP\r\n", b"NOOP\r\nNOOP\r\n",
                                      b"MAIL FROM:<x@example.org>\r\n"])
def test_starttls_injection(postern, injected):
    with postern.session() as c:
        c.send(b"STARTTLS\r\n" + injected)
        assert c.reply() == STARTTLS_GO
        c.starttls_wrap()
        extra = c.pending(0.5)
        assert extra == b"", "reply to a command injected before TLS: %r" % extra
        # the session was reset: HELO/EHLO forgotten
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == NEED_EHLO
        assert c.ehlo() == ehlo_lines(starttls=False)
        assert c.cmd("RCPT TO:<demo@example.test>") == NEED_MAIL
        assert c.cmd("STARTTLS") == TLS_ACTIVE
        assert c.pending(0.2) == b""


def test_starttls_forgets_transaction(postern):
    with postern.session() as c:
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        c.starttls()
        assert c.cmd("DATA") in (NEED_EHLO, NEED_RCPT)
        assert c.cmd("MAIL FROM:<%s>" % SENDER) == NEED_EHLO
        assert c.ehlo().code == 250
        assert c.cmd("RCPT TO:<demo@example.test>") == NEED_MAIL
        assert c.cmd("DATA") == NEED_RCPT
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], make_message("after-tls")))
    assert len(postern.messages("demo@example.test")) == 1


def test_starttls_with_argument(postern):
    with postern.session() as c:
        assert c.cmd("STARTTLS now") == STARTTLS_SYNTAX
        assert c.cmd("NOOP") == OK  # still in clear
        c.starttls()
        assert c.ehlo().code == 250


def test_starttls_then_garbage_instead_of_handshake(postern):
    with postern.session() as c:
        assert c.cmd("STARTTLS") == STARTTLS_GO
        c.send(b"EHLO this is not a ClientHello\r\nMAIL FROM:<x@example.org>\r\n")
        closed, extra = c.wait_closed(5)
        assert closed, "server kept a connection whose TLS handshake was garbage"
        assert b"250" not in extra, extra
    assert is_queued(postern.deliver("demo@example.test", make_message("after-garbage")))


@pytest.mark.postern_config(tls=False)
def test_starttls_without_tls_config(postern):
    with postern.session() as c:
        assert c.ehlo() == ehlo_lines(starttls=False)
        assert c.cmd("STARTTLS") == STARTTLS_UNAVAILABLE
        assert c.cmd("NOOP") == OK
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], make_message("no-tls")))


# -- privileges ---------------------------------------------------------------

def proc_status(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            fields[k] = v.split()
    return fields


def test_daemon_runs_unprivileged(postern):
    uid, gid = ensure_system_user()
    assert uid != 0
    st = proc_status(postern.pid)
    assert st["Uid"] == [str(uid)] * 4, st["Uid"]
    assert st["Gid"] == [str(gid)] * 4, st["Gid"]
    assert "0" not in st.get("Groups", []), st.get("Groups")
    assert int(st["CapEff"][0], 16) == 0 and int(st["CapPrm"][0], 16) == 0, (st["CapEff"], st["CapPrm"])
    # every thread, too
    for tid in os.listdir("/proc/%d/task" % postern.pid):
        assert proc_status(int(tid))["Uid"] == [str(uid)] * 4


def test_mail_files_belong_to_daemon_user(postern):
    uid, _ = ensure_system_user()
    assert is_queued(postern.deliver("demo@example.test", make_message("owner")))
    md = postern.maildir("demo@example.test")
    for d in (md, md / "new", md / "tmp", md / "cur"):
        s = d.stat()
        assert s.st_uid == uid, d
        assert stat.S_IMODE(s.st_mode) & 0o077 == 0, "%s is mode %o" % (d, stat.S_IMODE(s.st_mode))
    for f in postern.message_files("demo@example.test"):
        s = f.stat()
        assert s.st_uid == uid
        assert stat.S_IMODE(s.st_mode) & 0o007 == 0, "%s is mode %o" % (f, stat.S_IMODE(s.st_mode))


# -- the log ------------------------------------------------------------------

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warn|info|debug) \S+ ")


def test_log_cannot_be_forged_and_holds_no_body(postern):
    marker = "BODY-SECRET-7f3a9c"
    with postern.connect() as c:
        for hostile in (b"EHLO evil\rFORGED info - fake=1\r\n", b"EHLO evil\x1b[2J\x07\r\n",
                        b"NOOP\rFORGED info - fake=2\r\n"):
            c.send(hostile)
            c.reply()
            c.pending(0.3)  # in case the bare CR was taken as a line end
        assert c.ehlo().code == 250
        c.send(b"MAIL FROM:<a\rFORGED@example.org>\r\n")
        assert c.reply().code >= 500
        c.pending(0.3)
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"],
                                            make_message("log", body="%s\r\n" % marker)))
        c.cmd("QUIT")
    postern.stop()
    log = postern.log()
    assert log.strip(), "the daemon logged nothing"
    for line in log.splitlines():
        assert LOG_LINE.match(line), "log line not in the log format: %r" % line
        assert "\x1b" not in line and "\x07" not in line, line
    assert not any(l.startswith("FORGED") for l in log.splitlines())
    assert marker not in log


# -- header injection through the envelope ------------------------------------

def prepended_part(stored):
    """The bytes postern put in front of the message."""
    return stored.data[:len(stored.data) - len(stored.rest)]


@pytest.mark.parametrize("helo", [b"evil\rX-Injected: 1", b"evil\nX-Injected: 1", b"evil\x00", b"evil\x1b[2J",
                                  b"evil\tX-Injected: 1", "évil.example".encode(), b"[127.0.0.1]", b"a" * 400])
def test_hostile_helo_cannot_inject_headers(postern, helo):
    with postern.connect() as c:
        c.send(b"EHLO " + helo + b"\r\n")
        r = c.reply()
        c.pending(0.3)  # a bare CR/LF taken as a line end would leave a reply behind
        if r.code != 250:
            assert r.code >= 500, r
            return
        assert is_queued(c.mail_transaction(SENDER, ["demo@example.test"], make_message("helo")))
    msgs = postern.messages("demo@example.test")
    assert len(msgs) == 1
    head = prepended_part(msgs[0])
    assert not re.search(rb"(?m)^X-Injected", head), head
    assert not re.search(rb"[\x00-\x08\x0b-\x1f\x7f]", head), head
    assert msgs[0].rest == make_message("helo").replace(b"\r\n", b"\n")


@pytest.mark.parametrize("sender,ok", [
    ('"a b"@example.org', True),
    ('"a\\"b"@example.org', True),
    ('"a\rX-Injected: 1"@example.org', False),
    ('"a\nX-Injected: 1"@example.org', False),
    ('"a\x00b"@example.org', False),
    ("a\tb@example.org", False),
])
def test_envelope_cannot_inject_headers(postern, sender, ok):
    with postern.session() as c:
        c.send(("MAIL FROM:<%s>\r\n" % sender).encode())
        r = c.reply()
        c.pending(0.3)
        if not ok:
            assert r.code in (500, 501, 553), r
            return
        assert r == MAIL_OK
        assert c.cmd("RCPT TO:<demo@example.test>") == RCPT_OK
        assert c.cmd("DATA") == DATA_GO
        c.send(make_message("envelope") + b".\r\n")
        assert is_queued(c.reply())
    m = postern.messages("demo@example.test")[0]
    assert m.return_path == sender
    head = prepended_part(m)
    assert not re.search(rb"(?m)^X-Injected", head), head
