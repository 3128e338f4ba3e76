"""
Dovecot reads what postern delivers: a message sent with smtplib is fetched
over IMAP byte for byte as sent, after postern's Return-Path,
Authentication-Results and Received.
"""
import imaplib
import smtplib

import pytest

from mailfile import make_message
from posterntest import stored_hash

pytestmark = pytest.mark.normal_build_only

PASSWORD = "s3cret-pw"

MESSAGE = (
    "From: Jörg Sender <sender@example.org>\r\n"
    "To: Demo <demo@example.test>\r\n"
    "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= from the test\r\n"
    "Date: Tue, 02 Jan 2024 10:00:00 +0100\r\n"
    "Message-ID: <dovecot-test-1@client.example.org>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "X-Custom: folded\r\n"
    "  value\r\n"
    "\r\n"
    "Grüße aus Köln — 日本語のテキスト.\r\n"
    ".A line that starts with a dot\r\n"
    "From here on, nothing special.\r\n"
    "\r\n"
    "-- \r\n"
    "Sig\r\n"
).encode("utf-8")


def imap_fetch_all(port, user=("demo@example.test", PASSWORD)):
    with imaplib.IMAP4("127.0.0.1", port, timeout=20) as m:
        typ, _ = m.login(*user)
        assert typ == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK", data
        typ, data = m.search(None, "ALL")
        assert typ == "OK"
        out = []
        for num in data[0].split():
            typ, parts = m.fetch(num, "(RFC822.SIZE RFC822)")
            assert typ == "OK", parts
            meta, raw = parts[0]
            size = int(meta.decode().split("RFC822.SIZE ")[1].split()[0])
            out.append((size, raw))
        m.logout()
        return out


def test_dovecot_reads_delivered_message(postern, dovecot_factory):
    with smtplib.SMTP("127.0.0.1", postern.port, local_hostname="client.example.org", timeout=20) as s:
        assert s.sendmail("sender@example.org", ["demo@example.test"], MESSAGE,
                          mail_options=["BODY=8BITMIME"]) == {}
    stored = postern.messages("demo@example.test")
    assert len(stored) == 1
    stored = stored[0]

    dv = dovecot_factory(postern.mail_dir, {"demo@example.test": PASSWORD})
    msgs = imap_fetch_all(dv.port)
    assert len(msgs) == 1, dv.log()
    size, raw = msgs[0]
    assert size == len(raw)
    # Dovecot serves the stored file with CRLF line ends
    assert raw == stored.data.replace(b"\n", b"\r\n")
    assert raw.startswith(b"Return-Path: <sender@example.org>\r\nAuthentication-Results: mx.example.test;")
    # and after our trace headers, exactly what the client sent
    assert raw.endswith(MESSAGE)
    head_len = len(raw) - len(MESSAGE)
    prepended = raw[:head_len].decode()
    assert prepended.count("\r\nReceived: ") == 1 and "by mx.example.test" in prepended, prepended
    assert "Return-Path" not in prepended[1:], prepended
    assert prepended.count("Authentication-Results: ") == 1, prepended


def test_dovecot_sees_new_mail_while_running(postern, dovecot_factory):
    # first message makes the Maildir exist
    assert postern.deliver("alice@example.test", make_message("one")).code == 250
    dv = dovecot_factory(postern.mail_dir, {"alice@example.test": PASSWORD})
    with imaplib.IMAP4("127.0.0.1", dv.port, timeout=20) as m:
        assert m.login("alice@example.test", PASSWORD)[0] == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"], data
        assert postern.deliver("alice@example.test", make_message("two")).code == 250
        m.noop()
        typ, data = m.search(None, "ALL")
        assert data[0].split() == [b"1", b"2"], data
        typ, parts = m.fetch(b"2", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        assert parts[0][1].strip() == b"Subject: two"
        m.logout()


def test_dovecot_accepts_postern_password_hash(postern, dovecot_factory):
    """`postern user passwd` stores a crypt(3) hash that Dovecot's {CRYPT}
    scheme verifies (docs/architecture.md): the same password works for both."""
    p = postern.cli("user", "passwd", "demo@example.test", "--password-stdin", input="imap-pw-1\n")
    assert p.returncode == 0, p.stderr
    assert postern.deliver("demo@example.test", make_message("for-imap")).code == 250
    postern.stop()  # so that state.db is checkpointed and can be read as is
    h = stored_hash(postern, "demo@example.test")
    dv = dovecot_factory(postern.mail_dir, {"demo@example.test": "{CRYPT}" + h})
    with imaplib.IMAP4("127.0.0.1", dv.port, timeout=20) as m:
        with pytest.raises(imaplib.IMAP4.error):
            m.login("demo@example.test", "wrong-pw")
    with imaplib.IMAP4("127.0.0.1", dv.port, timeout=20) as m:
        assert m.login("demo@example.test", "imap-pw-1")[0] == "OK"
        typ, data = m.select("INBOX")
        assert typ == "OK" and data == [b"1"], data
        m.logout()
