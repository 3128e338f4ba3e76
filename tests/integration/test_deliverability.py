"""
`postern deliverability` over a store filled by real deliveries: the queue
delivers through MX records on a loopback DNS server to a scriptable SMTP
receiver (tests/lib/smtpsink.py) whose MX names make the ledger see gmail
(accepts), outlook (refuses with 5.7.1: the reputation run) and yahoo
(defers); a DMARC aggregate report from google.com counting fewer messages
than gmail accepted is imported with `postern reports import` (the
silent-drop flag). Then the same through the dashboard's new pages and
/metrics (queue size, recipient results, graylisting decisions).
"""
import json
import time

import pytest

from dnsserver import DnsServer
from posterntest import free_port
from smtpsink import SmtpSink
from webclient import WebClient, metric, parse_prometheus, svgs

SENDER = "alice@example.test"
ADMIN, ADMIN_PW = "admin@example.test", "correct horse battery"
HOSTILE = "<script>alert(1)</script>"

ZONES = {
    "gm.test": [("MX", (5, "gmail-smtp-in.l.google.com"))],
    "gmail-smtp-in.l.google.com": [("A", "127.0.0.1")],
    "ms.test": [("MX", (10, "ms-test.mail.protection.outlook.com"))],
    "ms-test.mail.protection.outlook.com": [("A", "127.0.0.1")],
    "ya.test": [("MX", (1, "mta5.am0.yahoodns.net"))],
    "mta5.am0.yahoodns.net": [("A", "127.0.0.1")],
}

GMAIL, OUTLOOK, YAHOO = 12, 6, 2


def policy(stage, value, sink):
    if stage == "rcpt" and value.endswith("@ms.test"):
        return "550 5.7.1 Service unavailable; client host blocked " + HOSTILE
    if stage == "rcpt" and value.endswith("@ya.test"):
        return "451 4.3.0 try again later"
    return None


def dmarc_report(count, day_start):
    return ("<?xml version=\"1.0\"?><feedback><report_metadata><org_name>google.com</org_name>"
            "<email>noreply-dmarc-support@google.com</email><report_id>g-1</report_id><date_range>"
            "<begin>%d</begin><end>%d</end></date_range></report_metadata>"
            "<policy_published><domain>example.test</domain><p>none</p></policy_published>"
            "<record><row><source_ip>127.0.0.1</source_ip><count>%d</count><policy_evaluated>"
            "<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>"
            "<identifiers><header_from>example.test</header_from></identifiers></record>"
            "<record><row><source_ip>192.0.2.9</source_ip><count>500</count><policy_evaluated>"
            "<disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>"
            "<identifiers><header_from>not-ours.test</header_from></identifiers></record></feedback>"
            % (day_start, day_start + 86399, count))


def sendmail(pt, rcpt, i):
    p = pt.cli("sendmail", "-f", SENDER, rcpt, input="Subject: m%d\nTo: %s\n\nHello %d.\n" % (i, rcpt, i))
    assert p.returncode == 0, p.stdout + p.stderr


def ledger(pt):
    p = pt.cli("queue", "ledger", "--json")
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture
def delivered(postern_factory, workdir):
    with DnsServer(ZONES, negative_ttl=1) as dns, SmtpSink(policy=policy) as sink:
        web_port = free_port()
        cfg = {
            "dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": "", "timeout": "2s"},
            "delivery": {"port": str(sink.port), "connect_timeout": "2s", "command_timeout": "10s"},
            "queue": {"retry_first": "1s", "retry_max": "2s"},
            "web": {"listen": "127.0.0.1:%d" % web_port, "admins": ADMIN},
        }
        pt = postern_factory(config=cfg, start=False)
        pt.add_user(ADMIN, ADMIN_PW)
        pt.web_port = web_port
        pt.start()
        for i in range(GMAIL):
            sendmail(pt, "u%d@gm.test" % i, i)
        for i in range(OUTLOOK):
            sendmail(pt, "u%d@ms.test" % i, i)
        for i in range(YAHOO):
            sendmail(pt, "u%d@ya.test" % i, i)

        def done():
            rows = ledger(pt)
            by = lambda prov, out: sum(1 for r in rows if r["provider"] == prov and r["outcome"] == out)
            return (by("gmail", "delivered") == GMAIL and by("outlook", "failed") == OUTLOOK
                    and by("yahoo", "deferred") >= YAHOO)
        wait_for(done, 40, "the deliveries")
        day = int(time.time()) // 86400 * 86400
        f = workdir / "google.xml"
        f.write_text(dmarc_report(5, day))
        p = pt.cli("reports", "import", str(f))
        assert p.returncode == 0, p.stdout + p.stderr
        yield pt


def deliverability(pt, *args):
    p = pt.cli("deliverability", *args)
    assert p.returncode in (0, 1), p.stderr
    return p


def test_deliverability_per_provider_and_day(delivered):
    pt = delivered
    p = deliverability(pt, "--json", "--min-messages", "10")
    assert p.returncode == 0, p.stderr
    j = json.loads(p.stdout)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert j["days"] == 7 and j["to"] == today
    prov = {x["provider"]: x for x in j["providers"]}
    assert set(prov) == {"gmail", "outlook", "yahoo"}, prov.keys()

    g = prov["gmail"]
    assert (g["sent"], g["delivered"], g["deferred"], g["bounced"]) == (GMAIL, GMAIL, 0, 0)
    assert g["reported"] == 5 and g["reported_pass"] == 5 and g["reports"] == 1  # not-ours.test not counted
    assert g["routes"] == "direct"
    assert g["days"] == [dict(date=today, sent=GMAIL, delivered=GMAIL, deferred=0, bounced=0, reported=5,
                              reported_pass=5, reports=1)]
    assert g["flags"] == ["silent_drop"]

    o = prov["outlook"]
    assert (o["sent"], o["delivered"], o["bounced"]) == (OUTLOOK, 0, OUTLOOK)
    assert o["flags"] == ["reputation"]
    assert o["longest_reputation_run"] == OUTLOOK and o["current_reputation_run"] == OUTLOOK
    assert len(o["reasons"]) == 1
    r = o["reasons"][0]
    assert (r["outcome"], r["code"], r["status"], r["count"], r["reputation"]) == ("bounced", 550, "5.7.1", OUTLOOK,
                                                                                   True)
    assert "client host blocked" in r["reply"]

    y = prov["yahoo"]
    assert y["delivered"] == 0 and y["bounced"] == 0 and y["deferred"] >= YAHOO and y["sent"] == y["deferred"]
    assert y["flags"] == []   # deferrals with 4.3.0 are not about reputation
    assert y["reasons"][0]["status"] == "4.3.0" and not y["reasons"][0]["reputation"]

    assert sorted((f["provider"], f["flag"]) for f in j["flags"]) == [("gmail", "silent_drop"),
                                                                      ("outlook", "reputation")]
    detail = [f["detail"] for f in j["flags"] if f["flag"] == "silent_drop"][0]
    assert "count 5 messages" in detail and "42% of the 12" in detail

    # the thresholds are options: 40 % makes 5 of 12 enough; a run of 7 is not reached
    j = json.loads(deliverability(pt, "--json", "--min-messages", "10", "--ratio", "40", "--run", "7").stdout)
    assert j["flags"] == []
    # 12 accepted is below the default minimum of 20: no report-based flag
    j = json.loads(deliverability(pt, "--json").stdout)
    assert [(f["provider"], f["flag"]) for f in j["flags"]] == [("outlook", "reputation")]
    # a pattern makes the yahoo deferrals reputation refusals too
    j = json.loads(deliverability(pt, "--json", "--run", "2", "--reputation-pattern", "TRY AGAIN").stdout)
    assert ("yahoo", "reputation") in [(f["provider"], f["flag"]) for f in j["flags"]]


def test_deliverability_human_and_errors(delivered):
    pt = delivered
    p = deliverability(pt, "--min-messages", "10", "--fail-on-flag")
    assert p.returncode == 1, p.stdout
    out = p.stdout
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert "gmail: sent 12, delivered 12, deferred 0, bounced 0; DMARC reports saw 5 (5 pass) in 1 report" in out
    assert "  %s %8d %9d %8d %7d %8d" % (today, 12, 12, 0, 0, 5) in out
    assert "FLAG silent_drop: gmail's DMARC reports count 5 messages" in out
    assert "bounced 550 5.7.1 x6 [reputation]: " in out
    assert "FLAG reputation: 6 consecutive reputation refusals from outlook" in out
    assert out.rstrip().endswith("2 flags.")
    for bad in (["--days", "0"], ["--days", "x"], ["--ratio", "101"], ["--run"], ["--what"]):
        p = pt.cli("deliverability", *bad)
        assert p.returncode == 2 and "deliverability" in p.stderr, (bad, p.stderr)


def test_pages_and_metrics(delivered):
    pt = delivered
    web = WebClient("127.0.0.1", pt.web_port)
    assert web.get("/deliverability").status == 303   # login first
    assert web.login(ADMIN, ADMIN_PW).status == 303
    for path in ("/queue", "/deliverability", "/reports", "/greylist"):
        r = web.get(path)
        assert r.status == 200, (path, r)
        assert svgs(r.text), path     # well-formed SVG (xml.etree)
        assert HOSTILE not in r.text, path
    d = web.get("/deliverability").text
    assert "gmail silent_drop" not in d       # the page uses the default minimum (20)
    assert "outlook reputation" in d and "6 consecutive reputation refusals" in d
    assert "client host blocked &lt;script&gt;alert(1)&lt;/script&gt;" in d
    assert '<h2 id="p-gmail">gmail</h2>' in d and "<td>12</td><td>12</td><td>0</td><td>0</td><td>5</td>" in d
    q = web.get("/queue").text
    assert "ya.test" in q and "try again later" in q
    rep = web.get("/reports").text
    assert "google.com" in rep and "DMARC reports" in rep

    m = parse_prometheus(web.get("/metrics").text)
    assert metric(m, "postern_queue_recipients_total", outcome="delivered") >= GMAIL
    assert metric(m, "postern_queue_recipients_total", outcome="bounced") >= OUTLOOK
    assert metric(m, "postern_queue_recipients_total", outcome="deferred") >= YAHOO
    assert metric(m, "postern_queue_messages") == YAHOO       # the yahoo messages wait
    assert metric(m, "postern_queue_size", state="pending") >= YAHOO
    assert metric(m, "postern_greylist_decisions_total", decision="defer") == 0
    deferred = metric(m, "postern_queue_recipients_total", outcome="deferred")
    wait_for(lambda: metric(parse_prometheus(web.get("/metrics").text), "postern_queue_recipients_total",
                            outcome="deferred") > deferred, 15, "another deferral (retry)")
    for qid in [x["qid"] for x in json.loads(pt.cli("queue", "list", "--json").stdout)]:
        assert pt.cli("queue", "delete", qid).returncode == 0
    wait_for(lambda: metric(parse_prometheus(web.get("/metrics").text), "postern_queue_messages") == 0, 15,
             "an empty queue in the gauge")
