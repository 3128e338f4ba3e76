"""
postern sending to a real MTA: Postfix on loopback found through MX records
on a loopback DNS server (opportunistic STARTTLS, recorded in the ledger),
and Postfix as a smarthost that requires AUTH over TLS (Dovecot SASL), with
STARTTLS and with implicit TLS, its certificate verified against a test CA;
routing through the relay by recipient domain and by MX host pattern.
"""
import json
import os
import pwd
import re
import time

import pytest

from dnsserver import DnsServer
from postfixserver import PostfixServer, make_ca_and_cert

SENDER = "alice@example.test"


def sendmail(pt, rcpts, subject="via postfix"):
    p = pt.cli("sendmail", "--print-qid", "-f", SENDER, *rcpts,
               input="Subject: %s\nTo: %s\n\nHello over SMTP.\n" % (subject, ", ".join(rcpts)))
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def ledger(pt):
    return json.loads(pt.cli("queue", "ledger", "--json").stdout)


def wait_ledger(pt, pred, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rows = ledger(pt)
        if any(pred(r) for r in rows):
            return rows
        time.sleep(0.2)
    raise AssertionError("no such ledger row after %ss: %s\n%s" % (timeout, ledger(pt), pt.log_tail()))


@pytest.fixture
def pki(workdir):
    d = workdir / "pki"
    d.mkdir()
    d.chmod(0o755)
    return make_ca_and_cert(d, ["mx.far.test", "relay.test"])


def test_delivery_to_postfix_via_mx_with_starttls(postern_factory, workdir, pki):
    ca, crt, key = pki
    pf = PostfixServer(workdir, ["bob@far.test", "carol@far.test"], cert=(crt, key)).start()
    try:
        zones = {"far.test": [("MX", (10, "mx.far.test"))], "mx.far.test": [("A", "127.0.0.1")]}
        with DnsServer(zones) as dns:
            pt = postern_factory(config={
                "dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": ""},
                "delivery": {"port": str(pf.port)},
            })
            qid = sendmail(pt, ["bob@far.test", "carol@far.test"])
            bob = pf.wait_mail("bob@far.test")[0]
            carol = pf.wait_mail("carol@far.test")[0]
            rows = wait_ledger(pt, lambda r: r["qid"] == qid and r["rcpt"] == "carol@far.test")
    finally:
        pf.stop()
    for m in (bob, carol):
        assert b"Subject: via postfix" in m and b"Hello over SMTP." in m
        # Postfix's Received header: our EHLO name, and TLS
        assert re.search(rb"Received: from mx\.example\.test \([^)]*\[127\.0\.0\.1\]\)\n\t\(using TLSv1\.[23]", m), m[:600]
    for r in (x for x in rows if x["qid"] == qid):
        assert r["outcome"] == "delivered" and r["route"] == "direct" and r["mx"] == "mx.far.test"
        assert r["tls_version"] in ("TLSv1.2", "TLSv1.3") and r["tls_cipher"]
        # opportunistic: the test CA is not among the system's, so not verified
        assert r["tls_verified"] is False
        assert r["reply"].startswith("250 2.0.0 Ok: queued as")


def relay_daemon(postern_factory, workdir, dns, pf, ca, password="s3cret", **relay):
    creds = workdir / "relay-credentials"
    creds.write_text("relayuser:%s\n" % password)
    pw = pwd.getpwnam("postern")
    os.chown(creds, pw.pw_uid, pw.pw_gid)
    creds.chmod(0o600)
    cfg = {
        "dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": ""},
        "delivery": {"port": "9"},  # direct delivery would fail: only the relay works
        "queue": {"retry_first": "1s", "retry_max": "2s"},
        "relay": dict({"host": "relay.test", "port": str(pf.port), "tls": "starttls",
                       "credentials_file": str(creds), "ca_file": str(ca)}, **relay),
    }
    return postern_factory(config=cfg)


RELAY_ZONES = {
    "relay.test": [("A", "127.0.0.1")],
    # pattern.test's MX is under relaymx.test, which the relay route matches
    "pattern.test": [("MX", (10, "in1.relaymx.test"))],
    "in1.relaymx.test": [("A", "127.0.0.1")],
}


def test_relay_with_auth_over_starttls_by_domain_and_mx_pattern(postern_factory, workdir, pki):
    ca, crt, key = pki
    pf = PostfixServer(workdir, ["bob@far.test", "dan@pattern.test"], cert=(crt, key), sasl_users={"relayuser": "s3cret"},
                       hostname="relay.test").start()
    try:
        with DnsServer(RELAY_ZONES) as dns:
            pt = relay_daemon(postern_factory, workdir, dns, pf, ca, domains="far.test", mx_patterns="*.relaymx.test")
            q1 = sendmail(pt, ["bob@far.test"], subject="by domain")
            q2 = sendmail(pt, ["dan@pattern.test"], subject="by mx pattern")
            m1 = pf.wait_mail("bob@far.test")[0]
            m2 = pf.wait_mail("dan@pattern.test")[0]
            rows = wait_ledger(pt, lambda r: r["qid"] == q2 and r["outcome"] == "delivered")
    finally:
        pf.stop()
    for m in (m1, m2):
        assert b"(Authenticated sender: relayuser)" in m, m[:800]
        assert re.search(rb"\(using TLSv1\.[23]", m)
    by = {r["qid"]: r for r in rows if r["outcome"] == "delivered"}
    assert by[q1]["route"] == "relay" and by[q1]["route_reason"] == "domain"
    assert by[q2]["route"] == "relay" and by[q2]["route_reason"] == "mx_pattern *.relaymx.test"
    assert by[q1]["tls_verified"] is True and by[q1]["mx"] == "relay.test"
    assert "s3cret" not in pt.log()


def test_relay_implicit_tls(postern_factory, workdir, pki):
    ca, crt, key = pki
    pf = PostfixServer(workdir, ["bob@far.test", "erin@far.test"], cert=(crt, key), sasl_users={"relayuser": "s3cret"},
                       hostname="relay.test").start()
    try:
        with DnsServer(RELAY_ZONES) as dns:
            pt = relay_daemon(postern_factory, workdir, dns, pf, ca, domains="*", tls="implicit")
            pt.write_config({**pt.overrides, "relay": {**pt.overrides["relay"], "port": str(pf.wrapper_port)}})
            pt.signal(1)  # SIGHUP: the new port
            time.sleep(0.5)
            sendmail(pt, ["erin@far.test"])
            m = pf.wait_mail("erin@far.test")[0]
    finally:
        pf.stop()
    assert b"(Authenticated sender: relayuser)" in m


def test_relay_refuses_bad_password(postern_factory, workdir, pki):
    ca, crt, key = pki
    pf = PostfixServer(workdir, ["bob@far.test"], cert=(crt, key), sasl_users={"relayuser": "s3cret"},
                       hostname="relay.test").start()
    try:
        with DnsServer(RELAY_ZONES) as dns:
            pt = relay_daemon(postern_factory, workdir, dns, pf, ca, password="wrong", domains="far.test")
            qid = sendmail(pt, ["bob@far.test"])
            rows = wait_ledger(pt, lambda r: r["qid"] == qid and r["outcome"] == "deferred")
            row = [r for r in rows if r["qid"] == qid][0]
            assert row["code"] == 535 and row["status"].startswith("4"), row
            shown = json.loads(pt.cli("queue", "show", qid, "--json").stdout)
            assert shown["recipients"][0]["state"] == "pending"
            assert "wrong" not in pt.log()
            assert pf.maildir_files("bob@far.test") == []
    finally:
        pf.stop()


def test_relay_refuses_a_certificate_it_cannot_verify(postern_factory, workdir, pki, cert):
    ca, crt, key = pki
    pf = PostfixServer(workdir, ["bob@far.test"], cert=(crt, key), sasl_users={"relayuser": "s3cret"},
                       hostname="relay.test").start()
    try:
        with DnsServer(RELAY_ZONES) as dns:
            # cert[0] is another self-signed certificate, not the CA that signed the relay's
            pt = relay_daemon(postern_factory, workdir, dns, pf, cert[0], domains="far.test")
            qid = sendmail(pt, ["bob@far.test"])
            rows = wait_ledger(pt, lambda r: r["qid"] == qid and r["outcome"] == "deferred")
            row = [r for r in rows if r["qid"] == qid][0]
            assert "certificate verify failed" in row["reply"], row
            assert pf.maildir_files("bob@far.test") == []
    finally:
        pf.stop()
