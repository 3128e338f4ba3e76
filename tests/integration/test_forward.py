"""
Alias forwarding to outside addresses (issue 4), against the real daemon:
mail that arrives on port 25 for an alias whose target is elsewhere is
put in the outbound queue for that target, carrying our ARC set (RFC 8617:
the AAR holds the Authentication-Results we computed; AMS and AS are
sealed with the RSA key of the alias's domain), while local targets of the
same alias get their copy as usual.

dkimpy (arc_verify, its DNS asking a loopback server) validates the chain
of the queued copy, and the original DKIM signature still verifies. A
chain that was already there (a mailing list before us) gets instance 2.
The queued copy is read through queued.queued_messages().
"""
import re

import dkim  # dkimpy
import pytest

from dnsserver import DnsServer
from dkimtest import record_strings, dnsfunc_for
from queued import queued_messages

MESSAGE = (b"From: Sender <sender@origin.example>\r\n"
           b"To: <fwd@example.test>\r\n"
           b"Subject: forward me\r\n"
           b"Date: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
           b"Message-ID: <fwd-1@origin.example>\r\n"
           b"\r\n"
           b"Hello,\r\n\r\nplease pass this on.\r\n")


@pytest.fixture
def world(postern_factory, tmp_path):
    """A daemon checking SPF, DKIM, DMARC and ARC against a loopback DNS
    server, with RSA keys for example.test (ours) and origin.example (the
    sender's), and the alias fwd@example.test -> friend@outside.example,
    bob@example.test."""
    zones = {"origin.example": [("TXT", "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all")],
             "_dmarc.origin.example": [("TXT", "v=DMARC1; p=reject")],
             # The destination's DNS fails for now: the forward waits in
             # the queue, where the test reads it.
             "outside.example": ["SERVFAIL"]}
    server = DnsServer(zones)
    server.start()
    pt = postern_factory(config={
        "dns": {"resolver": "127.0.0.1:%d" % server.port, "trust_anchor": "", "timeout": "2s"},
        "spf": {"enabled": "yes"}, "dkim": {"verify": "yes"}, "dmarc": {"enabled": "yes"},
        "arc": {"verify": "yes"}}, start=False)
    p = pt.cli("dkim", "keygen", "--domain", "example.test", "--selector", "fwd")
    assert p.returncode == 0, p.stderr
    name, strings = record_strings(p.stdout)
    zones[name] = [("TXT", strings)]
    okey = tmp_path / "origin.key"
    p = pt.cli("dkim", "keygen", "--domain", "origin.example", "--selector", "o", "--out", okey)
    assert p.returncode == 0, p.stderr
    name, strings = record_strings(p.stdout)
    zones[name] = [("TXT", strings)]
    server.set_zones(zones)
    p = pt.add_alias("fwd@example.test", "friend@outside.example", "bob@example.test")
    assert "added fwd@example.test -> friend@outside.example (forwarded outside)" in p.stdout
    pt.start()
    yield pt, server, okey
    server.stop()


def signed_by_origin(okey, msg=MESSAGE):
    sig = dkim.sign(msg, b"o", b"origin.example", okey.read_bytes(),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    return sig + msg


def test_forwarded_copy_is_arc_sealed(world):
    pt, server, okey = world
    msg = signed_by_origin(okey)
    r = pt.deliver("fwd@example.test", msg, sender="sender@origin.example")
    assert r.code == 250, r
    q = queued_messages(pt)
    assert len(q) == 1, q
    assert q[0].mail_from == "sender@origin.example"
    assert q[0].rcpts == ["friend@outside.example"]
    assert q[0].origin == "forward"
    data = q[0].data.replace(b"\n", b"\r\n")
    assert data.startswith(b"ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.test; s=fwd;"), data[:300]
    aar = re.search(rb"(?ms)^ARC-Authentication-Results: (.*?)\r\n(?=\S)", data).group(1)
    aar = b" ".join(aar.split())
    assert aar.startswith(b"i=1; mx.example.test;"), aar
    assert b"spf=pass smtp.mailfrom=sender@origin.example" in aar and b"dkim=pass" in aar and \
        b"dmarc=pass" in aar, aar
    assert b"Return-Path" not in data.split(b"\r\n\r\n", 1)[0]
    dnsfunc = dnsfunc_for(server)
    cv, _, reason = dkim.arc_verify(data, dnsfunc=dnsfunc)
    assert cv == b"pass", reason
    assert dkim.DKIM(data).verify(dnsfunc=dnsfunc)
    # The local target of the same alias got its copy, not sealed.
    local = [p.read_bytes() for p in pt.message_files("bob@example.test")]
    assert len(local) == 1 and b"ARC-Seal" not in local[0]


def test_existing_chain_gets_the_next_instance(world):
    pt, server, okey = world
    # A list sealed it first (instance 1, with our own key standing in for
    # the list's: what matters is that dkimpy validates the chain).
    msg = b"Authentication-Results: list.origin.example; dkim=pass header.d=origin.example\r\n" + \
        signed_by_origin(okey)
    fields = dkim.arc_sign(msg, b"o", b"origin.example", okey.read_bytes(), b"list.origin.example",
                           include_headers=[b"from", b"to", b"subject", b"date"])
    assert len(fields) == 3, fields
    msg = b"".join(fields) + msg
    r = pt.deliver("fwd@example.test", msg, sender="sender@origin.example")
    assert r.code == 250, r
    q = queued_messages(pt)
    assert len(q) == 1
    data = q[0].data.replace(b"\n", b"\r\n")
    assert data.startswith(b"ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=example.test;"), data[:200]
    cv, results, reason = dkim.arc_verify(data, dnsfunc=dnsfunc_for(server))
    assert cv == b"pass", reason


def test_unknown_alias_still_refused_and_port_25_still_no_relay(world):
    pt, server, okey = world
    with pt.session() as c:
        assert c.cmd("MAIL FROM:<sender@origin.example>").code == 250
        assert c.cmd("RCPT TO:<friend@outside.example>").code == 554
        assert c.cmd("RCPT TO:<nobody@example.test>").code == 550
    assert queued_messages(pt) == []
