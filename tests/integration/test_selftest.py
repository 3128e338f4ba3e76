"""
Self-test addresses ([selftest], issue 7) against the real daemon: mail to
check-TOKEN@example.test is graded instead of delivered, with SPF, DKIM,
DMARC and the policy's reverse-DNS lookups running against a loopback DNS
server; the report is kept (`postern selftest show|list`) and mailed back
through the queue only to a sender who passed SPF or DMARC.
"""
import json
import re
import smtplib
import ssl
import time

import dkim
import pytest

from dnsserver import DnsServer
from dkimtest import record_strings

KEYS = {}


@pytest.fixture
def world(postern_factory, tmp_path):
    zones = {
        "good.example": [("TXT", "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all"), ("MX", (10, "mx.good.example"))],
        "mx.good.example": [("A", "127.0.0.1")],
        "_dmarc.good.example": [("TXT", "v=DMARC1; p=reject")],
        "bad.example": [("TXT", "v=spf1 ip4:192.0.2.1 -all")],
        "_dmarc.bad.example": [("TXT", "v=DMARC1; p=reject")],
        "example.test": [("TXT", "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all")],
        "mail.good.example": [("A", "127.0.0.1")],
    }
    server = DnsServer(zones)
    server.start()
    pt = postern_factory(config={
        "dns": {"resolver": server.address, "trust_anchor": "", "timeout": "2s"},
        "spf": {"enabled": "yes"}, "dkim": {"verify": "yes"}, "dmarc": {"enabled": "yes"},
        "policy": {"enabled": "yes"},
        "selftest": {"enabled": "yes", "reply": "yes"},
        "queue": {"retry_first": "1s"}}, start=False)
    key = tmp_path / "good.key"
    p = pt.cli("dkim", "keygen", "--domain", "good.example", "--selector", "s1", "--out", key)
    assert p.returncode == 0, p.stderr
    name, strings = record_strings(p.stdout)
    zones[name] = [("TXT", strings)]
    server.set_zones(zones)
    pt.start()
    yield pt, key
    server.stop()


def message(frm, to, date=True, msgid=True, subject="hello"):
    lines = ["From: Someone <%s>" % frm, "To: <%s>" % to, "Subject: %s" % subject]
    if date:
        lines.append(time.strftime("Date: %a, %d %b %Y %H:%M:%S +0000", time.gmtime()))
    if msgid:
        lines.append("Message-ID: <%d@%s>" % (time.time_ns(), frm.split("@")[1]))
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=us-ascii"]
    return ("\r\n".join(lines) + "\r\n\r\nJust a test.\r\n").encode()


def send(pt, sender, rcpt, data, tls=True, helo="mail.good.example"):
    with smtplib.SMTP("127.0.0.1", pt.port, local_hostname=helo, timeout=30) as c:
        c.ehlo(helo)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            c.starttls(context=ctx)
            c.ehlo(helo)
        code, reply = c.mail(sender)
        assert code == 250, reply
        code, reply = c.rcpt(rcpt)
        assert code == 250, reply
        c.data(data)  # raises on anything but 250


def report(pt, token):
    p = pt.cli("selftest", "show", token, "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def deductions(rep):
    return {i["check"]: i["points"] for i in rep["items"] if i["points"] > 0}


def test_good_message_scores_high(world):
    pt, key = world
    to = "check-goodtoken1@example.test"
    msg = message("alice@good.example", to)
    msg = dkim.sign(msg, b"s1", b"good.example", key.read_bytes(),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]) + msg
    send(pt, "alice@good.example", to, msg)
    rep = report(pt, "goodtoken1")
    facts = rep["facts"]
    assert facts["spf"] == "pass" and facts["dmarc"] == "pass", facts
    assert [d["result"] for d in facts["dkim"]] == ["pass"], facts
    assert facts["tls_version"].startswith("TLSv1."), facts
    got = deductions(rep)
    for check in ("spf", "dkim", "dmarc", "tls", "from", "date", "message-id", "subject"):
        assert check not in got, got
    assert rep["score"] == pytest.approx(10 - sum(got.values()), abs=0.05)
    assert rep["score"] >= 9.0, rep
    # Graded, not delivered: nobody's mailbox got it.
    assert not any(b"goodtoken1" in p.read_bytes() for p in pt.all_message_files())
    text = pt.cli("selftest", "show", "goodtoken1")
    assert text.returncode == 0 and re.search(r"Score: \d+\.\d/10", text.stdout), text.stdout


def test_bad_message_gets_each_deduction_and_is_not_refused(world):
    """SPF fail and DMARC p=reject would refuse this message for a mailbox;
    for a self-test address it is graded instead."""
    pt, _ = world
    to = "check-badtoken1@example.test"
    send(pt, "mallory@bad.example", to, message("mallory@bad.example", to, date=False, msgid=False), tls=False)
    rep = report(pt, "badtoken1")
    got = deductions(rep)
    assert got["spf"] == 3.0 and got["dkim"] == 1.5 and got["dmarc"] == 2.5, got
    assert got["tls"] == 1.0 and got["message-id"] == 1.0 and got["date"] == 0.5, got
    assert rep["score"] <= 0.5, rep
    fixes = [i["fix"] for i in rep["items"] if i["points"] > 0]
    assert all(fixes), rep["items"]


def test_report_mailed_back_only_to_authenticated_senders(world):
    pt, _ = world
    # alice@example.test is ours, and SPF passes for example.test: the
    # report comes back through the queue, into her mailbox.
    to = "check-replytoken@example.test"
    send(pt, "alice@example.test", to, message("alice@example.test", to))
    deadline = time.time() + 20
    got = []
    while time.time() < deadline:
        got = [f.read_bytes() for f in pt.message_files("alice@example.test")]
        got = [raw for raw in got if b"Self-test replytoken" in raw]
        if got:
            break
        time.sleep(0.3)
    assert got, pt.log_tail()
    raw = got[0]
    assert b"Auto-Submitted: auto-replied" in raw
    assert re.search(rb"^Return-Path: <>", raw, re.M), raw[:300]
    assert re.search(rb"Subject: Self-test replytoken: \d+\.\d/10", raw)
    # A forged sender (SPF fail) gets nothing back: no backscatter.
    to = "check-forgedtoken@example.test"
    send(pt, "victim@bad.example", to, message("victim@bad.example", to))
    report(pt, "forgedtoken")
    time.sleep(1)
    q = json.loads(pt.cli("queue", "list", "--json").stdout)
    assert not any(r["address"] == "victim@bad.example" for m in q for r in m["recipients"]), q
    assert "token=forgedtoken" in pt.log() and "reply=no" in pt.log()


def test_cli_new_list_show(world):
    pt, _ = world
    p = pt.cli("selftest", "new")
    assert p.returncode == 0
    assert re.fullmatch(r"check-[a-z0-9]{10}@example\.test\n", p.stdout), p.stdout
    j = json.loads(pt.cli("selftest", "new", "--json", "--domain", "catch.test").stdout)
    assert j["address"] == "check-%s@catch.test" % j["token"]
    assert "no self-test reports yet" in pt.cli("selftest", "list").stdout
    to = "check-listtoken1@example.test"
    send(pt, "alice@good.example", to, message("alice@good.example", to))
    lst = json.loads(pt.cli("selftest", "list", "--json").stdout)
    assert [r["token"] for r in lst] == ["listtoken1"] and lst[0]["from"] == "alice@good.example"
    assert pt.cli("selftest", "show", "nosuchtoken").returncode == 1
    assert pt.cli("selftest", "show", "BAD!").returncode == 2


def test_selftest_off_means_unknown_user(postern_factory):
    pt = postern_factory(config={"selftest": {"enabled": "no"}})
    with pt.session() as c:
        c.cmd("MAIL FROM:<a@example.org>")
        r = c.cmd("RCPT TO:<check-abcd1234@example.test>")
        assert r.code == 550, r
