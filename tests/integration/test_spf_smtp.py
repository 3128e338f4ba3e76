"""
SPF inside the running daemon, against a real DNS server on loopback:
Received-SPF headers for HELO and MAIL FROM, the [spf] actions with their
RFC 7372 codes, a slow DNS server that does not stall other sessions, and
the resolver's cache honouring TTLs and negative TTLs (counted at the DNS
server).
"""
import socket
import threading
import time

import pytest

from dnsserver import DnsServer
from mailfile import make_message

ZONES = {
    "good.example": [("TXT", "v=spf1 ip4:127.0.0.0/8 ip6:::1 -all", 2)],
    "bad.example": [("TXT", "v=spf1 -all exp=why.bad.example")],
    "why.bad.example": [("TXT", "%{i} may not send for %{d}")],
    "soft.example": [("TXT", "v=spf1 ~all")],
    "broken.example": [("TXT", "v=spf1 ip4:300.1.1.1 -all")],
    "slow.example": ["TIMEOUT"],
    "client.example.org": [("TXT", "v=spf1 a -all"), ("A", "127.0.0.1")],
}


@pytest.fixture
def dns():
    with DnsServer(ZONES, negative_ttl=1) as server:
        yield server


def spf_daemon(postern_factory, dns, **spf):
    cfg = {"dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": "", "timeout": "1s"},
           "spf": dict({"enabled": "yes"}, **spf)}
    return postern_factory(config=cfg)


def send(pt, sender, subject):
    return pt.deliver("demo@example.test", make_message(subject=subject, sender=sender), sender=sender)


def header_values(msg_bytes, name):
    head = msg_bytes.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    out, cur = [], None
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            out[-1] += " " + line.strip()
        elif line.lower().startswith(name.lower() + ":"):
            out.append(line.split(":", 1)[1].strip())
            cur = True
        else:
            cur = None
    return out


def test_received_spf_headers_for_helo_and_mail_from(postern_factory, dns):
    pt = spf_daemon(postern_factory, dns)
    r = send(pt, "alice@good.example", "pass")
    assert r.code == 250, r
    raw = pt.message_files("demo@example.test")[-1].read_bytes()
    spf = header_values(raw, "Received-SPF")
    assert len(spf) == 2, spf
    helo, mail = spf
    assert helo.startswith("pass ") and "identity=helo" in helo and "helo=client.example.org" in helo
    assert mail.startswith("pass ") and "identity=mailfrom" in mail
    assert "envelope-from=alice@good.example" in mail and "client-ip=127.0.0.1" in mail
    # Received-SPF sits above our Received header (RFC 7208 section 9.1).
    text = raw.decode()
    assert text.index("Received-SPF:") < text.index("Received: from")
    assert "event=spf identity=mailfrom domain=good.example result=pass" in pt.log()


@pytest.mark.parametrize("sender,key,value,code,text", [
    ("x@bad.example", "fail", "reject", 550, "5.7.23 Message rejected: SPF check failed: 127.0.0.1 may not send for bad.example"),
    ("x@soft.example", "softfail", "reject", 550, "5.7.23 Message rejected: SPF check soft-failed"),
    ("x@broken.example", "permerror", "reject", 550, "5.7.24"),
    ("x@slow.example", "temperror", "defer", 451, "4.7.24"),
])
def test_spf_actions(postern_factory, dns, sender, key, value, code, text):
    pt = spf_daemon(postern_factory, dns, **{key: value})
    r = send(pt, sender, "refused")
    assert r.code == code and text in r.text, r
    assert pt.message_files("demo@example.test") == []
    # The default for the same sender is to record and deliver.
    pt2 = spf_daemon(postern_factory, dns)
    r = send(pt2, sender, "recorded")
    assert r.code == 250, r
    mail = header_values(pt2.message_files("demo@example.test")[-1].read_bytes(), "Received-SPF")[-1]
    assert mail.split()[0] == {"fail": "fail", "softfail": "softfail", "permerror": "permerror",
                               "temperror": "temperror"}[key], mail


def test_slow_dns_does_not_stall_other_sessions(postern_factory, dns):
    """A sender whose SPF lookups time out (1 s per query here) holds only
    its own session; another client is served meanwhile."""
    pt = spf_daemon(postern_factory, dns)
    slow_done = {}

    def slow():
        t = time.monotonic()
        slow_done["reply"] = send(pt, "x@slow.example", "slow")
        slow_done["seconds"] = time.monotonic() - t

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.2)
    t = time.monotonic()
    r = send(pt, "y@good.example", "fast")
    fast = time.monotonic() - t
    th.join(30)
    assert r.code == 250 and slow_done["reply"].code == 250
    assert slow_done["seconds"] >= 0.9, slow_done
    assert fast < slow_done["seconds"], (fast, slow_done)


def test_dns_cache_honours_ttl_and_negative_ttl(postern_factory, dns):
    pt = spf_daemon(postern_factory, dns)
    assert send(pt, "a@good.example", "one").code == 250
    assert send(pt, "b@good.example", "two").code == 250
    # TTL 2 s: the second message was answered from the cache.
    assert dns.count("good.example", "TXT") == 1
    time.sleep(3)
    assert send(pt, "c@good.example", "three").code == 250
    assert dns.count("good.example", "TXT") == 2
    # A name that does not exist: cached for the negative TTL (1 s).
    assert send(pt, "a@nowhere.example", "n1").code == 250
    assert send(pt, "b@nowhere.example", "n2").code == 250
    assert dns.count("nowhere.example", "TXT") == 1
    time.sleep(2.5)
    assert send(pt, "c@nowhere.example", "n3").code == 250
    assert dns.count("nowhere.example", "TXT") == 2


def test_queries_in_flight_are_bounded(postern_factory):
    """[dns] max_queries = 2: five sessions whose SPF lookups hang; the DNS
    server sees only two of the names until those time out."""
    zones = {"hang%d.example" % i: ["TIMEOUT"] for i in range(5)}
    with DnsServer(zones) as dns:
        cfg = {"dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": "", "timeout": "2s",
                       "max_queries": "2"},
               "spf": {"enabled": "yes", "check_helo": "no"}}
        pt = postern_factory(config=cfg)
        threads = [threading.Thread(target=send, args=(pt, "x@hang%d.example" % i, "hang%d" % i))
                   for i in range(5)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        seen = {q.name for q in dns.queries if q.name.startswith("hang")}
        assert len(seen) == 2, seen
        for t in threads:
            t.join(60)
        seen = {q.name for q in dns.queries if q.name.startswith("hang")}
        assert len(seen) == 5, seen
