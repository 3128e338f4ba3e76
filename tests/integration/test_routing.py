"""
Adaptive routing and pacing, end to end. A receiver that looks like
Outlook (its MX under mail.protection.outlook.com, on a loopback DNS
server) is the scriptable tests/lib/smtpsink.py; it refuses our direct
delivery with Outlook's block-list reply (S3140). The relay is a real
Postfix smarthost requiring AUTH over TLS (tests/lib/postfixserver.py).
postern must retry the refused mail through the relay at once (not after
the retry backoff, not as a bounce), route Outlook there for [routing]
period, say so in `postern routes`, and go direct again once the period
is over. Pacing holds mail for a provider back in the queue, then lets it
go; it never bounces it. Time is compressed by configuration.
"""
import json
import os
import pwd
import time

import pytest

from dnsserver import DnsServer
from postfixserver import PostfixServer, make_ca_and_cert
from smtpsink import SmtpSink

SENDER = "alice@example.test"
S3140 = ("550 5.7.1 Unfortunately, messages from [127.0.0.1] weren't sent. Please contact your Internet service "
         "provider since part of their network is on our block list (S3140). You can also refer your provider to "
         "http://mail.live.com/mail/troubleshooting.aspx#errors.")

ZONES = {
    "relay.test": [("A", "127.0.0.1")],
    "corp.test": [("MX", (10, "corp-test.mail.protection.outlook.com"))],
    "corp-test.mail.protection.outlook.com": [("A", "127.0.0.1")],
}


def sendmail(pt, rcpt, subject):
    p = pt.cli("sendmail", "--print-qid", "-f", SENDER, rcpt, input="Subject: %s\nTo: %s\n\nHello.\n" % (subject, rcpt))
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def ledger(pt):
    return json.loads(pt.cli("queue", "ledger", "--json").stdout)


def routes(pt):
    p = pt.cli("routes", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def wait_for(pred, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


class Refuser:
    """The sink's policy: Outlook's S3140 at RCPT while `refusing`."""
    def __init__(self):
        self.refusing = True

    def __call__(self, stage, value, sink):
        return S3140 if stage == "rcpt" and self.refusing else None


@pytest.fixture
def pki(workdir):
    d = workdir / "pki"
    d.mkdir()
    d.chmod(0o755)
    return make_ca_and_cert(d, ["relay.test"])


def daemon(postern_factory, workdir, dns, sink, pf=None, ca=None, routing=None, pacing=None):
    cfg = {
        "dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": "", "timeout": "2s"},
        "delivery": {"port": str(sink.port), "connect_timeout": "2s", "command_timeout": "10s"},
        # a normal retry would come a minute later: the tests finish long before
        "queue": {"retry_first": "1m", "retry_max": "1m", "delay_notice": "0"},
    }
    if pf:
        creds = workdir / "relay-credentials"
        creds.write_text("relayuser:s3cret\n")
        pw = pwd.getpwnam("postern")
        os.chown(creds, pw.pw_uid, pw.pw_gid)
        creds.chmod(0o600)
        cfg["relay"] = {"host": "relay.test", "port": str(pf.port), "tls": "starttls",
                        "credentials_file": str(creds), "ca_file": str(ca)}
    if routing:
        cfg["routing"] = routing
    if pacing:
        cfg["pacing"] = pacing
    return postern_factory(config=cfg)


def test_outlook_reputation_refusal_goes_through_the_relay_and_the_route_expires(postern_factory, workdir, pki):
    ca, crt, key = pki
    pf = PostfixServer(workdir, ["bob@corp.test", "carol@corp.test", "dan@corp.test"], cert=(crt, key),
                       sasl_users={"relayuser": "s3cret"}, hostname="relay.test").start()
    refuser = Refuser()
    try:
        with DnsServer(ZONES) as dns, SmtpSink(policy=refuser) as sink:
            pt = daemon(postern_factory, workdir, dns, sink, pf, ca, routing={"period": "8s"})
            t0 = time.monotonic()
            q1 = sendmail(pt, "bob@corp.test", "first")
            m1 = pf.wait_mail("bob@corp.test", timeout=20)[0]
            took = time.monotonic() - t0
            assert b"Subject: first" in m1 and b"(Authenticated sender: relayuser)" in m1
            assert took < 20, took  # at once, not after retry_first (1 minute)
            assert sink.count("rcpt") == 1 and sink.messages == []

            rows = [r for r in ledger(pt) if r["qid"] == q1]
            assert [(r["route"], r["outcome"]) for r in rows] == [("direct", "deferred"), ("relay", "delivered")], rows
            assert rows[0]["provider"] == "outlook" and rows[0]["code"] == 550 and "(S3140)" in rows[0]["reply"]
            assert rows[1]["route_reason"].startswith("learned: 550 5.7.1 Unfortunately, messages from [127.0.0.1]")
            assert rows[1]["mx"] == "relay.test"

            r = routes(pt)["routes"]
            assert len(r) == 1, r
            assert r[0]["key"] == "outlook" and r[0]["provider"] == "outlook" and r[0]["domain"] == "corp.test"
            assert r[0]["relay"] is True and r[0]["active"] is True and "(S3140)" in r[0]["reason"]
            assert 0 < r[0]["until"] - r[0]["learned"] <= 8
            text = pt.cli("routes").stdout
            assert "outlook" in text and "via relay until" in text and "S3140" in text, text
            assert "event=learned_route key=outlook" in pt.log()

            # while the route holds, Outlook mail goes straight to the relay
            q2 = sendmail(pt, "carol@corp.test", "second")
            pf.wait_mail("carol@corp.test", timeout=20)
            rows = [r for r in ledger(pt) if r["qid"] == q2]
            assert [(r["route"], r["outcome"]) for r in rows] == [("relay", "delivered")], rows
            assert sink.count("rcpt") == 1

            # the route expires: direct again (the receiver has forgiven us)
            refuser.refusing = False
            wait_for(lambda: routes(pt)["routes"][0]["state"] == "expired", 15, "the route to expire")
            assert "direct again since" in pt.cli("routes").stdout
            q3 = sendmail(pt, "dan@corp.test", "third")
            sink.wait_messages(1, 20)
            rows = wait_for(lambda: [r for r in ledger(pt) if r["qid"] == q3 and r["outcome"] == "delivered"], 10,
                            "the ledger row")
            assert rows[0]["route"] == "direct" and rows[0]["route_reason"] == "mx"
            assert pf.maildir_files("dan@corp.test") == []

            p = pt.cli("routes", "forget", "outlook")
            assert p.returncode == 0 and "forgotten" in p.stdout
            assert routes(pt)["routes"] == []
            assert pt.cli("routes", "forget", "outlook").returncode == 1
    finally:
        pf.stop()
    assert pt.message_files(SENDER) == []  # no bounce, no delay notice


def test_without_a_relay_the_refusal_bounces_and_routes_advises_one(postern_factory, workdir):
    with DnsServer(ZONES) as dns, SmtpSink(policy=Refuser()) as sink:
        pt = daemon(postern_factory, workdir, dns, sink)
        q = sendmail(pt, "bob@corp.test", "no relay")
        wait_for(lambda: pt.message_files(SENDER), 20, "the bounce")
        rows = [r for r in ledger(pt) if r["qid"] == q]
        assert [(r["route"], r["outcome"]) for r in rows] == [("direct", "failed")], rows
        r = routes(pt)["routes"]
        assert r[0]["key"] == "outlook" and r[0]["relay"] is False and r[0]["active"] is False
        assert r[0]["state"] == "advice"
        assert "no relay is configured; set [relay] host" in pt.cli("routes").stdout


def test_pacing_holds_mail_in_the_queue_and_lets_it_go_later(postern_factory, workdir):
    with DnsServer(ZONES) as dns, SmtpSink() as sink:
        pt = daemon(postern_factory, workdir, dns, sink,
                    pacing={"limits": "outlook=2/h, *=100/h", "window": "5s"})
        qids = [sendmail(pt, "rcpt%d@corp.test" % i, "paced %d" % i) for i in range(5)]
        sink.wait_messages(2, 20)
        time.sleep(1.5)
        # two went; three wait in the queue, pending, because of pacing
        assert len(sink.messages) == 2
        queued = json.loads(pt.cli("queue", "list", "--json").stdout)
        held = [r for m in queued for r in m["recipients"]]
        assert len(held) == 3 and all(r["state"] == "pending" for r in held), held
        state = [p for p in routes(pt)["pacing"]["providers"] if p["key"] == "outlook"][0]
        assert state["sent"] == 2 and state["limit"] == 2, state
        assert "event=paced" in pt.log()
        # the window moves on: two more, then the last one
        sink.wait_messages(5, 30)
        dots = [c[0] for c in sink.commands if c[1] == "dot"]
        assert dots[2] - dots[0] >= 4.0, dots   # not before the window allowed
        wait_for(lambda: json.loads(pt.cli("queue", "list", "--json").stdout) == [], 10, "an empty queue")
        rows = [r for r in ledger(pt) if r["qid"] in qids]
        assert sorted(r["outcome"] for r in rows) == ["delivered"] * 5, rows   # no paced rows, no failures
    assert pt.message_files(SENDER) == []  # never bounced
