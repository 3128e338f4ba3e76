"""
The whole way out (issue 6's end-to-end test): a user submits a message
with AUTH over STARTTLS on the submission port; postern signs it (RSA and
Ed25519, keys from `postern dkim keygen`), queues it, finds the receiver
through MX records on a loopback DNS server and delivers it to a real
Postfix; dkimpy then verifies both signatures on the copy Postfix stored,
with its DNS asking the same loopback server for the published keys.
"""
import re
import smtplib
import ssl
import time

import dkim

from dkimtest import dnsfunc_for, record_strings
from dnsserver import DnsServer
from postfixserver import PostfixServer, make_ca_and_cert


def test_submitted_message_arrives_signed_at_postfix(postern_factory, workdir, cert):
    pki = workdir / "pki"
    pki.mkdir()
    pki.chmod(0o755)
    _, crt, key = make_ca_and_cert(pki, ["mx.far.test"])
    pf = PostfixServer(workdir, ["bob@far.test"], cert=(crt, key)).start()
    zones = {"far.test": [("MX", (10, "mx.far.test"))], "mx.far.test": [("A", "127.0.0.1")]}
    try:
        with DnsServer(zones) as dns:
            sub_port = _free_port()
            pt = postern_factory(config={
                "dns": {"resolver": dns.address, "trust_anchor": ""},
                "delivery": {"port": str(pf.port)},
                "submission": {"listen": "127.0.0.1:%d" % sub_port},
            }, start=False)
            p = pt.cli("dkim", "keygen", "--domain", "example.test")
            assert p.returncode == 0, p.stderr
            for line in p.stdout.strip().splitlines():
                name, strings = record_strings(line)
                zones[name] = [("TXT", strings)]
            dns.set_zones(zones)
            p = pt.cli("user", "passwd", "alice@example.test", "--password-stdin", input="alice-pw\n")
            assert p.returncode == 0, p.stderr
            pt.start()
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP("127.0.0.1", sub_port, timeout=30) as c:
                c.ehlo("laptop.example.test")
                c.starttls(context=ctx)
                c.ehlo("laptop.example.test")
                c.login("alice@example.test", "alice-pw")
                c.sendmail("alice@example.test", ["bob@far.test"],
                           b"From: Alice <alice@example.test>\r\nTo: Bob <bob@far.test>\r\n"
                           b"Subject: all the way\r\n\r\nSigned, queued, delivered.\r\n")
            stored = pf.wait_mail("bob@far.test")[0]
            raw = stored.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            assert len(re.findall(rb"^DKIM-Signature:", raw, re.M)) == 2, raw[:2000]
            results = [dkim.DKIM(raw).verify(idx=i, dnsfunc=dnsfunc_for(dns)) for i in range(2)]
            assert results == [True, True], raw[:2000]
            assert b"a=rsa-sha256" in raw and b"a=ed25519-sha256" in raw
            # Postern added what the client left out (RFC 6409 section 8).
            assert re.search(rb"^Date: ", raw, re.M) and re.search(rb"^Message-ID: <", raw, re.M)
    finally:
        pf.stop()


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
