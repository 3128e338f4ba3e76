"""
Outbound TLS policies, end to end: messages injected with `postern
sendmail` and delivered by the daemon to a receiving SMTP server with
STARTTLS (tests/lib/smtpsink.py) whose certificate the tests choose.

MTA-STS (RFC 8461): the policy is served by a real HTTPS server on
127.0.x.y:443 (tests/lib/httpsserver.py) under a test CA that [delivery]
ca_file trusts, found through _mta-sts TXT and mta-sts A records on a
loopback DNS server. Enforce mode with a certificate for another name: not
delivered, kept queued with a 4.7.5 "MTA-STS policy" reason and
certificate-host-mismatch in the ledger; with a certificate for the MX
name: delivered on the retry, from the cached policy. An MX host the
policy does not list is never connected to. Testing mode delivers and
records the failure.

DANE (RFC 7672): NSD (tests/lib/nsdserver.py) serves zones signed at test
time with a TLSA 3 1 1 record computed from the receiver's key, postern's
resolver validates them with the zones' DS records as trust anchors. The
receiver's certificate names another host and its CA is not trusted, so
only DANE can make it acceptable: delivered with the dane policy met; with a
TLSA record of another key: not delivered, validation-failure. The zones
are under .example (libunbound answers .test itself; see test_dnssec.py).
"""
import json
import shutil
import ssl
import subprocess
import time

import pytest

from dnsserver import DnsServer
from httpsserver import HttpsServer, TestCA, free_loopback_443
from nsdserver import NsdServer, make_keys, sign_zone
from posterntest import make_workdir
from smtpsink import SmtpSink

SENDER = "alice@example.test"
DOMAIN = "sts.test"
MX = "mx.sts.test"
POLICY_PATH = "/.well-known/mta-sts.txt"


def policy(mode, mx=MX):
    return ("version: STSv1\r\nmode: %s\r\nmx: %s\r\nmax_age: 86400\r\n" % (mode, mx)).encode()


@pytest.fixture(scope="module")
def pki():
    """The test CA, the MTA-STS HTTPS server (its policy in pki.policy),
    and receiver certificates: for the MX name, and for another name."""
    d = make_workdir("postern-tlspolicy-")

    class State:
        pass
    st = State()
    st.dir = d
    st.ca = TestCA(d / "ca")
    cert, key = st.ca.issue(d, ["mta-sts." + DOMAIN])
    st.good = st.ca.issue(d, [MX])
    st.wrong = st.ca.issue(d, ["wrong.example.test"])
    st.addr = free_loopback_443()
    st.policy = (200, policy("enforce"), {"Content-Type": "text/plain"})
    with HttpsServer(st.addr, 443, cert, key, {POLICY_PATH: lambda host, path: st.policy}) as srv:
        st.server = srv
        yield st
    shutil.rmtree(d, ignore_errors=True)


def sts_zones(https_addr):
    return {
        DOMAIN: [("MX", (10, MX))],
        MX: [("A", "127.0.0.1")],
        "_mta-sts." + DOMAIN: [("TXT", "v=STSv1; id=20260101")],
        "mta-sts." + DOMAIN: [("A", https_addr)],
    }


def daemon(postern_factory, resolver, sink, trust_anchor="", ca_file=""):
    cfg = {
        "dns": {"resolver": resolver, "trust_anchor": trust_anchor, "timeout": "2s"},
        "delivery": {"port": str(sink.port), "connect_timeout": "2s", "command_timeout": "10s", "ipv6": "no",
                     "ca_file": ca_file},
        "queue": {"retry_first": "1s", "retry_max": "2s"},
    }
    return postern_factory(config=cfg)


def sendmail(pt, rcpt):
    p = pt.cli("sendmail", "--print-qid", "-f", SENDER, rcpt, input="Subject: tls\nTo: %s\n\nHello.\n" % rcpt)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.strip()


def cli_json(pt, *args):
    p = pt.cli(*args, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def rows(pt, outcome):
    return [r for r in cli_json(pt, "queue", "ledger") if r["outcome"] == outcome]


def tls_context(cert):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    return ctx


def test_sts_enforce_refuses_wrong_certificate_then_delivers(postern_factory, pki):
    pki.policy = (200, policy("enforce"), {})
    fetches = len(pki.server.requests)
    with DnsServer(sts_zones(pki.addr)) as dns, \
            SmtpSink(certfile=str(pki.wrong[0]), keyfile=str(pki.wrong[1])) as sink:
        pt = daemon(postern_factory, dns.address, sink, ca_file=str(pki.ca.cert_path))
        qid = sendmail(pt, "bob@" + DOMAIN)
        bad = wait_for(lambda: rows(pt, "deferred"), 20, "a deferred attempt")[0]
        assert bad["tls_policy"] == "sts-enforce" and bad["tls_policy_ok"] is False, bad
        assert bad["tls_failure"] == "certificate-host-mismatch", bad
        assert bad["status"] == "4.7.5" and bad["reply"].startswith("MTA-STS policy: "), bad
        assert bad["mx"] == MX and bad["ip"] == "127.0.0.1", bad
        assert bad["tls_version"] and bad["tls_verified"] is False, bad
        # the handshake happened, no mail was given to the receiver
        assert sink.messages == [] and sink.connections >= 1
        q = cli_json(pt, "queue", "list")
        assert [m["qid"] for m in q] == [qid]
        r = q[0]["recipients"][0]
        assert r["state"] == "pending" and r["status"] == "4.7.5" and "MTA-STS policy" in r["reply"], r
        # the receiver gets a certificate for its name: delivered on the retry
        sink.tls_ctx = tls_context(pki.good)
        msgs = sink.wait_messages(1, 20)
        assert msgs[0].tls and msgs[0].rcpts == ["bob@" + DOMAIN]
        wait_for(lambda: cli_json(pt, "queue", "list") == [], 10, "an empty queue")
        ok = rows(pt, "delivered")
        assert len(ok) == 1 and ok[0]["tls_policy"] == "sts-enforce" and ok[0]["tls_policy_ok"] is True, ok
        assert ok[0]["tls_failure"] is None and ok[0]["tls_verified"] is True, ok
    # fetched once, the retries used the cached policy (same id)
    assert len(pki.server.requests) - fetches == 1, pki.server.requests
    assert "source=cache" in pt.log()


def test_sts_enforce_mx_not_in_policy_is_not_contacted(postern_factory, pki):
    pki.policy = (200, policy("enforce", mx="mail.elsewhere.test"), {})
    with DnsServer(sts_zones(pki.addr)) as dns, \
            SmtpSink(certfile=str(pki.good[0]), keyfile=str(pki.good[1])) as sink:
        pt = daemon(postern_factory, dns.address, sink, ca_file=str(pki.ca.cert_path))
        sendmail(pt, "bob@" + DOMAIN)
        bad = wait_for(lambda: rows(pt, "deferred"), 20, "a deferred attempt")[0]
        assert bad["tls_policy"] == "sts-enforce" and bad["tls_failure"] == "validation-failure", bad
        assert bad["status"] == "4.7.5" and "no MX host of sts.test is listed" in bad["reply"], bad
        assert sink.connections == 0
        assert cli_json(pt, "queue", "list")[0]["recipients"][0]["state"] == "pending"


def test_sts_testing_delivers_and_records_the_failure(postern_factory, pki):
    pki.policy = (200, policy("testing"), {})
    with DnsServer(sts_zones(pki.addr)) as dns, \
            SmtpSink(certfile=str(pki.wrong[0]), keyfile=str(pki.wrong[1])) as sink:
        pt = daemon(postern_factory, dns.address, sink, ca_file=str(pki.ca.cert_path))
        sendmail(pt, "bob@" + DOMAIN)
        sink.wait_messages(1, 20)
        ok = wait_for(lambda: rows(pt, "delivered"), 10, "a delivered row")[0]
        assert ok["tls_policy"] == "sts-testing" and ok["tls_policy_ok"] is False, ok
        assert ok["tls_failure"] == "certificate-host-mismatch" and ok["tls_version"], ok
        assert rows(pt, "deferred") == []


def test_sts_fetch_failure_without_cache_delivers_opportunistically(postern_factory, pki):
    pki.policy = (404, b"no policy here\n", {})
    with DnsServer(sts_zones(pki.addr)) as dns, \
            SmtpSink(certfile=str(pki.wrong[0]), keyfile=str(pki.wrong[1])) as sink:
        pt = daemon(postern_factory, dns.address, sink, ca_file=str(pki.ca.cert_path))
        sendmail(pt, "bob@" + DOMAIN)
        sink.wait_messages(1, 20)
        ok = wait_for(lambda: rows(pt, "delivered"), 10, "a delivered row")[0]
        assert ok["tls_policy"] == "none" and ok["tls_failure"] == "sts-policy-fetch-error", ok


# ---- DANE ----

DANE_ZONE = """$ORIGIN {origin}.
$TTL 300
@                IN SOA  ns1 hostmaster 1 3600 600 86400 60
@                IN NS   ns1
@                IN MX   10 mx
ns1              IN A    127.0.0.1
mx               IN A    127.0.0.1
_25._tcp.mx      IN TLSA 3 1 1 {tlsa}
"""


def spki_sha256(cert):
    """TLSA 3 1 1 data: SHA-256 of the certificate's SubjectPublicKeyInfo."""
    pub = subprocess.run(["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"], check=True,
                         capture_output=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub, check=True,
                         capture_output=True).stdout
    import hashlib
    return hashlib.sha256(der).hexdigest()


@pytest.fixture(scope="module")
def dane(pki):
    """NSD with dane.example (TLSA of the receiver's key) and
    danebad.example (TLSA of another key), both signed; the anchor file."""
    d = make_workdir("postern-dane-")
    # the receiver's certificate names neither MX host and its CA is not
    # given to postern: PKIX would fail, only DANE-EE accepts it
    st_cert = pki.ca.issue(d, ["unrelated.example"])
    other = pki.ca.issue(d, ["other-key.example"])
    files, anchors = {}, []
    for origin, tlsa in (("dane.example", spki_sha256(st_cert[0])), ("danebad.example", spki_sha256(other[0]))):
        keys = make_keys(d, origin)
        files[origin] = sign_zone(d, origin, DANE_ZONE.format(origin=origin, tlsa=tlsa), keys)
        anchors.append(keys.ds)
    anchor = d / "anchors.zone"
    anchor.write_text("\n".join(anchors) + "\n")
    anchor.chmod(0o644)
    d.chmod(0o755)
    with NsdServer(d, files) as nsd:
        yield "127.0.0.1:%d" % nsd.port, str(anchor), st_cert
    shutil.rmtree(d, ignore_errors=True)


def test_dane_tlsa_match_delivers(postern_factory, dane):
    resolver, anchor, cert = dane
    with SmtpSink(certfile=str(cert[0]), keyfile=str(cert[1])) as sink:
        pt = daemon(postern_factory, resolver, sink, trust_anchor=anchor)
        sendmail(pt, "bob@dane.example")
        msgs = sink.wait_messages(1, 20)
        assert msgs[0].tls
        ok = wait_for(lambda: rows(pt, "delivered"), 10, "a delivered row")[0]
        assert ok["tls_policy"] == "dane" and ok["tls_policy_ok"] is True and ok["tls_failure"] is None, ok
        assert ok["mx"] == "mx.dane.example" and ok["tls_verified"] is True, ok
        assert "event=dane host=mx.dane.example records=1 usable=yes" in pt.log()


def test_dane_tlsa_mismatch_is_not_delivered(postern_factory, dane):
    resolver, anchor, cert = dane
    with SmtpSink(certfile=str(cert[0]), keyfile=str(cert[1])) as sink:
        pt = daemon(postern_factory, resolver, sink, trust_anchor=anchor)
        sendmail(pt, "bob@danebad.example")
        bad = wait_for(lambda: rows(pt, "deferred"), 20, "a deferred attempt")[0]
        assert bad["tls_policy"] == "dane" and bad["tls_policy_ok"] is False, bad
        assert bad["tls_failure"] == "validation-failure", bad
        assert bad["status"] == "4.7.5" and bad["reply"].startswith("DANE: "), bad
        assert sink.messages == [] and sink.connections >= 1
        assert cli_json(pt, "queue", "list")[0]["recipients"][0]["state"] == "pending"
