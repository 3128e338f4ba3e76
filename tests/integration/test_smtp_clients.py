"""
Real clients against postern: swaks, Python's smtplib, with and without
STARTTLS; and which TLS versions the server agrees to.
"""
import email.message
import smtplib
import socket
import ssl
import subprocess
import threading
import warnings

import pytest

from mailfile import make_message, to_lf
from replies import OK, STARTTLS_GO
from smtpconn import client_tls_context, is_queued


def swaks(postern, *extra):
    cmd = ["swaks", "--server", "127.0.0.1:%d" % postern.port, "--from", "sender@example.org",
           "--to", "demo@example.test", "--helo", "client.example.org", "--timeout", "20"] + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=60)


def only_message(postern, address="demo@example.test"):
    msgs = postern.messages(address)
    assert len(msgs) == 1, msgs
    return msgs[0]


def test_swaks_plain(postern):
    p = swaks(postern, "--header", "Subject: swaks plain", "--body", "hello from swaks")
    assert p.returncode == 0, p.stdout + p.stderr
    m = only_message(postern)
    assert m.header("Subject") == "swaks plain"
    assert m.body.strip() == b"hello from swaks"
    assert m.return_path == "sender@example.org"
    assert "with ESMTP " in m.received or m.received.endswith("with ESMTP"), m.received


def test_swaks_starttls(postern):
    p = swaks(postern, "--tls", "--header", "Subject: swaks tls", "--body", "hello over tls")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "<-  220 2.0.0 Ready to start TLS" in p.stdout, p.stdout
    m = only_message(postern)
    assert m.header("Subject") == "swaks tls"
    assert m.body.strip() == b"hello over tls"
    assert "ESMTPS" in m.received, m.received


def test_smtplib_starttls(postern, cert):
    msg = make_message("smtplib", body="Hello via smtplib.\r\n")
    ctx = client_tls_context(cafile=str(cert[0]))
    with smtplib.SMTP("127.0.0.1", postern.port, local_hostname="client.example.org", timeout=20) as s:
        code, _ = s.ehlo()
        assert code == 250
        assert s.has_extn("starttls")
        code, text = s.starttls(context=ctx)
        assert (code, text) == (220, b"2.0.0 Ready to start TLS")
        s.ehlo()
        assert not s.has_extn("starttls")
        refused = s.sendmail("sender@example.org", ["demo@example.test", "alice@example.test"], msg)
        assert refused == {}
    for a in ("demo@example.test", "alice@example.test"):
        assert only_message(postern, a).rest == to_lf(msg)


def test_smtplib_refused_recipient(postern):
    with smtplib.SMTP("127.0.0.1", postern.port, local_hostname="client.example.org", timeout=20) as s:
        refused = s.sendmail("sender@example.org", ["demo@example.test", "nobody@example.test"],
                             make_message("partial"))
        assert refused == {"nobody@example.test": (
            550, b"5.1.1 <nobody@example.test>: Recipient address rejected: User unknown")}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            s.sendmail("sender@example.org", ["x@foreign.test"], make_message("relay"))
    assert len(postern.messages("demo@example.test")) == 1


def test_smtplib_smtputf8(postern):
    m = email.message.EmailMessage()
    m["From"] = "Jörg <jörg@exämple.org>"
    m["To"] = "demo@example.test"
    m["Subject"] = "Grüße"
    m.set_content("Grüße aus Köln.\n")
    with smtplib.SMTP("127.0.0.1", postern.port, local_hostname="client.example.org", timeout=20) as s:
        s.send_message(m, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    stored = only_message(postern)
    assert stored.return_path == "jörg@exämple.org"
    assert "Grüße aus Köln." in stored.body.decode("utf-8")


# -- TLS versions -------------------------------------------------------------

def control_handshake(cert, client_ctx):
    """Handshakes client_ctx against a permissive local TLS server; proves the
    client side can speak the version, so a refusal comes from postern."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    srv_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        srv_ctx.minimum_version = ssl.TLSVersion.TLSv1
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def serve():
        a, _ = ls.accept()
        try:
            s = srv_ctx.wrap_socket(a, server_side=True)
            s.recv(1)
        except (OSError, ssl.SSLError):
            pass
        finally:
            a.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    s = socket.create_connection(ls.getsockname(), timeout=10)
    try:
        ss = client_ctx.wrap_socket(s, server_hostname="mx.example.test")
        version = ss.version()
        ss.close()
        return version
    finally:
        s.close()
        t.join(10)
        ls.close()


@pytest.mark.parametrize("version,name", [("TLSv1", "TLSv1"), ("TLSv1_1", "TLSv1.1")])
def test_old_tls_refused(postern, cert, version, name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        v = getattr(ssl.TLSVersion, version)
        ctx = client_tls_context(min_version=v, max_version=v, legacy=True)
    assert control_handshake(cert, ctx) == name, "this client cannot speak %s; the test would prove nothing" % name
    with postern.session() as c:
        assert c.cmd("STARTTLS") == STARTTLS_GO
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            c.starttls_wrap(ctx)
            # a server that accepted would now answer over TLS
            c.cmd("NOOP")
    # and the server goes on serving
    assert is_queued(postern.deliver("demo@example.test", make_message("after-old-tls")))


@pytest.mark.parametrize("version,name", [("TLSv1_2", "TLSv1.2"), ("TLSv1_3", "TLSv1.3")])
def test_modern_tls_accepted(postern, cert, version, name):
    v = getattr(ssl.TLSVersion, version)
    ctx = client_tls_context(cafile=str(cert[0]), min_version=v, max_version=v)
    with postern.session() as c:
        c.starttls(ctx)
        assert c.sock.version() == name
        assert c.ehlo().code == 250
        assert c.cmd("NOOP") == OK
        assert is_queued(c.mail_transaction("sender@example.org", ["demo@example.test"], make_message(name)))
    r = only_message(postern).received
    assert name in r and "ESMTPS" in r, r
