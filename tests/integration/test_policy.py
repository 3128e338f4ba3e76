"""
The inbound policy against the real daemon and a real DNS server on
loopback (tests/lib/dnsserver.py): DNSBL/DNSWL zones (listed, not listed,
error codes, timeouts), FCrDNS and HELO checks with their scores in the
X-Postern-Policy header, the Junk folder and the reject threshold;
graylisting with time compressed by configuration (min_delay = 2s), with
the delays measured: a retry from another address of the same block, or of
an SPF-authorised pool, is accepted on its first retry after the delay;
DMARC-aligned mail at once; an auto-allowed client at once the second time;
a sender that never retries never gets in; rate limits, early talkers and
dictionary attacks, while other clients keep being served; `postern policy
explain` and `postern greylist`.

Clients connect from several loopback addresses (127.x.y.z, all on lo), so
the daemon sees distinct client IPs, blocks and DNSBL names.
"""
import json
import threading
import time

import pytest

from dnsserver import DnsServer
from mailfile import StoredMessage, make_message
from smtpconn import SMTPConn, ServerClosed, dot_stuff

HOST = "mx.example.test"
ZONES = {
    "1.0.0.127.in-addr.arpa": [("PTR", "client.example.org")],
    "client.example.org": [("A", "127.0.0.1")],
    # libunbound answers 127.in-addr.arpa itself (localhost), so FCrDNS of
    # other addresses is shown through `policy explain`, which needs no
    # connection from them.
    "6.2.0.192.in-addr.arpa": [("PTR", "liar.example.org")],
    "liar.example.org": [("A", "192.0.2.99")],
    "7.2.0.192.in-addr.arpa": [("PTR", "good.example.org")],
    "good.example.org": [("A", "192.0.2.7")],
    "2.0.0.127.bl.test": [("A", "127.0.0.2")],
    "3.0.0.127.bl.test": [("A", "127.255.255.254")],
    "4.0.0.127.bl.test": ["TIMEOUT"],
    "5.0.0.127.wl.test": [("A", "127.0.10.2")],
    "pool.test": [("TXT", "v=spf1 ip4:127.0.1.0/24 ip4:127.0.2.0/24 -all")],
    "aligned.test": [("TXT", "v=spf1 ip4:127.0.0.0/8 -all")],
    "_dmarc.aligned.test": [("TXT", "v=DMARC1; p=none")],
    "example.org": [("A", "192.0.2.1")],
}


@pytest.fixture
def dns():
    with DnsServer(ZONES, negative_ttl=1) as server:
        yield server


def daemon(postern_factory, dns, policy=None, greylist=None, ratelimit=None, dmarc=False, dnsbl=None):
    cfg = {
        "dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": "", "timeout": "1s"},
        "spf": {"enabled": "yes"},
        "policy": dict({"enabled": "yes", "junk_threshold": "3.5", "reject_threshold": "50"}, **(policy or {})),
        "greylist": dict({"mode": "off", "min_delay": "2s"}, **(greylist or {})),
        "dnsbl": dnsbl or {"blocklists": "bl.test=3 127.0.0.2=4", "allowlists": "wl.test"},
        "ratelimit": ratelimit or {},
    }
    if dmarc:
        cfg["dkim"] = {"verify": "yes"}
        cfg["dmarc"] = {"enabled": "yes"}
    return postern_factory(config=cfg)


def attempt(pt, source, sender, rcpt="demo@example.test", helo="client.example.org", message=None):
    """One whole transaction from source; returns the first reply that is not
    a success (RCPT or end of data), or the end-of-data reply."""
    msg = message or make_message(subject="from %s" % source, sender=sender, to=rcpt)
    with SMTPConn("127.0.0.1", pt.port, source=source) as c:
        assert c.greeting.code == 220, c.greeting
        assert c.ehlo(helo).code == 250
        r = c.cmd("MAIL FROM:<%s>" % sender)
        assert r.code == 250, r
        r = c.cmd("RCPT TO:<%s>" % rcpt)
        if r.code != 250:
            c.cmd("QUIT")
            return r
        r = c.cmd("DATA")
        assert r.code == 354, r
        c.send(dot_stuff(msg) + b".\r\n")
        r = c.reply()
        c.cmd("QUIT")
        return r


def retry_until_accepted(pt, sources, sender, rcpt="demo@example.test", every=0.25, limit=15, message=None):
    """Retries (cycling through sources) until accepted. Returns (seconds from
    the first attempt to the accepted one, the replies)."""
    replies, t0 = [], time.monotonic()
    for i in range(int(limit / every)):
        r = attempt(pt, sources[min(i, len(sources) - 1)], sender, rcpt, message=message)
        replies.append(r)
        if r.code == 250:
            return time.monotonic() - t0, replies
        time.sleep(every)
    raise AssertionError("never accepted: %r" % replies)


def newest(pt, address, folder=None):
    """The one message delivered to address (or its folder) since the last call."""
    d = pt.maildir(address) / (folder or "") / "new"
    seen = pt.__dict__.setdefault("_seen", set())
    files = [f for f in (d.iterdir() if d.is_dir() else []) if f not in seen]
    assert len(files) == 1, "expected one new message in %s: %s" % (d, files)
    seen.add(files[0])
    return StoredMessage(files[0], files[0].read_bytes())


def test_dnsbl_listed_error_codes_timeouts_and_junk(postern_factory, dns):
    pt = daemon(postern_factory, dns)
    # Listed with code 127.0.0.2 (weight 4) and no PTR (+1.5): Junk.
    assert attempt(pt, "127.0.0.2", "a@example.org").code == 250
    m = newest(pt, "demo@example.test", ".Junk")
    assert "dnsbl.bl.test=+4.00" in m.policy and "fcrdns.none=+1.50" in m.policy, m.policy
    assert m.policy.startswith("score=5.50 decision=junk"), m.policy
    assert "event=dnsbl zone=bl.test client=127.0.0.2 codes=127.0.0.2 weight=+4.00" in pt.log()
    # A refusal code (Spamhaus's 127.255.255.254) is an error, never a listing.
    assert attempt(pt, "127.0.0.3", "a@example.org").code == 250
    m = newest(pt, "demo@example.test")
    assert "dnsbl" not in m.policy and m.policy.startswith("score=1.50 decision=deliver"), m.policy
    assert "event=dnsbl_error zone=bl.test client=127.0.0.3 code=127.255.255.254" in pt.log()
    # Not listed, FCrDNS passes, HELO resolves: nothing scored.
    assert attempt(pt, "127.0.0.1", "a@example.org").code == 250
    assert newest(pt, "demo@example.test").policy == "score=0.00 decision=deliver greylist=off; none"


def test_dnsbl_timeout_holds_only_its_own_session(postern_factory, dns):
    pt = daemon(postern_factory, dns)
    slow = {}

    def run():
        t = time.monotonic()
        slow["reply"] = attempt(pt, "127.0.0.4", "a@example.org")
        slow["seconds"] = time.monotonic() - t

    th = threading.Thread(target=run)
    th.start()
    time.sleep(0.1)
    t = time.monotonic()
    assert attempt(pt, "127.0.0.1", "b@example.org").code == 250
    fast = time.monotonic() - t
    th.join(30)
    assert slow["reply"].code == 250, slow
    assert slow["seconds"] >= 0.9 and fast < slow["seconds"], (fast, slow)
    assert "event=dnsbl_error zone=bl.test client=127.0.0.4 error=timeout" in pt.log()


def test_reject_threshold_and_dnswl(postern_factory, dns):
    pt = daemon(postern_factory, dns, policy={"reject_threshold": "5"}, greylist={"mode": "all"})
    r = attempt(pt, "127.0.0.2", "a@example.org")
    assert r == "550 5.7.1 <demo@example.test>: Recipient address rejected by policy (score 5.50)", r
    # DNSWL-listed: never graylisted, even with mode = all; its weight counts.
    t = time.monotonic()
    assert attempt(pt, "127.0.0.5", "a@example.org").code == 250
    assert time.monotonic() - t < 1.5
    m = newest(pt, "demo@example.test")
    assert "greylist=exempt=dnswl" in m.policy and "dnswl.wl.test=-1.00" in m.policy, m.policy


def test_helo_and_fcrdns_checks(postern_factory, dns):
    pt = daemon(postern_factory, dns, policy={"junk_threshold": "50"})
    cases = [("127.0.0.1", HOST, "helo.ours=+4.00"), ("127.0.0.1", "nodots", "helo.syntax=+2.00"),
             ("127.0.0.1", "nx.example.org", "helo.unresolvable=+1.00"),
             ("127.0.0.1", "[127.0.0.1]", "helo.ours=+4.00"),
             ("127.0.0.1", "[127.0.0.9]", "helo.literal=+0.50"),
             ("127.0.0.6", "client.example.org", "fcrdns.none=+1.50")]
    for source, helo, part in cases:
        with SMTPConn("127.0.0.1", pt.port, source=source) as c:
            c.ehlo(helo)
            r = c.mail_transaction("a@example.org", ["demo@example.test"], make_message(subject=helo))
            assert r.code == 250, r
        m = newest(pt, "demo@example.test")
        assert part in m.policy, (helo, m.policy)
    assert "event=policy stage=data score=" in pt.log()


def test_greylist_retry_from_the_same_block(postern_factory, dns):
    pt = daemon(postern_factory, dns, greylist={"mode": "all", "decide_at_data": "no"})
    r = attempt(pt, "127.0.0.10", "a@example.org")
    assert r == "450 4.7.1 <demo@example.test>: Greylisted, try again in 2 seconds", r
    # Retries come from other addresses of 127.0.0.0/24 (one client block).
    delay, replies = retry_until_accepted(pt, ["127.0.0.11", "127.0.0.12", "127.0.0.13"], "a@example.org")
    assert 1.75 <= delay <= 3.5, (delay, replies)
    assert all(r.code == 450 for r in replies[:-1])
    m = newest(pt, "demo@example.test")
    assert "greylist=passed" in m.policy, m.policy


def test_greylist_spf_pool_retry_from_another_block(postern_factory, dns):
    """SPF passes for pool.test: the triplet's client is the domain, so a
    retry from another /24 of its pool passes on its first retry after the
    delay; without SPF, another block is another client."""
    pt = daemon(postern_factory, dns, greylist={"mode": "all"}, dmarc=True)
    t0 = time.monotonic()
    r = attempt(pt, "127.0.1.5", "x@pool.test")
    # decide_at_data: the recipient is accepted, the message deferred.
    assert r == "451 4.7.1 Greylisted, try again in 2 seconds", r
    time.sleep(max(0, 2.05 - (time.monotonic() - t0)))
    r = attempt(pt, "127.0.2.9", "x@pool.test")
    assert r.code == 250, r
    assert time.monotonic() - t0 >= 2.0
    assert "greylist=passed" in newest(pt, "demo@example.test").policy
    # No SPF for example.org: the retry from another block is a new triplet.
    assert attempt(pt, "127.0.1.5", "y@example.org").code == 451
    time.sleep(2.1)
    assert attempt(pt, "127.0.2.9", "y@example.org").code == 451


def test_aligned_mail_is_accepted_at_once(postern_factory, dns):
    pt = daemon(postern_factory, dns, greylist={"mode": "all", "min_delay": "60s"}, dmarc=True)
    t = time.monotonic()
    r = attempt(pt, "127.0.0.21", "news@aligned.test",
                message=make_message(sender="news@aligned.test", subject="aligned"))
    assert r.code == 250, r
    assert time.monotonic() - t < 1.5
    m = newest(pt, "demo@example.test")
    assert "greylist=exempt=dmarc" in m.policy, m.policy
    assert "dmarc=pass" in m.authres
    # The same envelope with a From that is not aligned waits.
    r = attempt(pt, "127.0.0.21", "news@aligned.test",
                message=make_message(sender="someone@example.org", subject="not aligned"))
    assert r == "451 4.7.1 Greylisted, try again in 60 seconds", r


def test_auto_allowed_client_is_accepted_at_once_the_second_time(postern_factory, dns):
    pt = daemon(postern_factory, dns, greylist={"mode": "all", "decide_at_data": "no", "auto_allow_after": "1"})
    assert attempt(pt, "127.0.0.20", "a@example.org").code == 450
    delay, _ = retry_until_accepted(pt, ["127.0.0.20"], "a@example.org")
    assert delay >= 1.75
    # Another sender and recipient from the same block: at once.
    t = time.monotonic()
    r = attempt(pt, "127.0.0.22", "b@example.org", rcpt="u1@example.test")
    assert r.code == 250 and time.monotonic() - t < 1.5, r
    assert "greylist=exempt=allowed_client" in newest(pt, "u1@example.test").policy
    p = pt.cli("greylist", "list", "--json")
    assert p.returncode == 0, p.stderr
    state = json.loads(p.stdout)
    allowed = {a["key"]: a for a in state["allowed"]}
    assert allowed["127.0.0.0/24"]["count"] >= 1 and not allowed["127.0.0.0/24"]["manual"]
    t = [g for g in state["triplets"] if g["sender"] == "a@example.org"]
    assert t and t[0]["client"] == "127.0.0.0/24" and t[0]["passed"]


def test_a_sender_that_never_retries_never_gets_in(postern_factory, dns):
    pt = daemon(postern_factory, dns, greylist={"mode": "all", "decide_at_data": "no", "min_delay": "1s",
                                                "retry_window": "2s"})
    assert attempt(pt, "127.0.0.30", "spam@example.org").code == 450
    time.sleep(2.5)
    assert pt.message_files("demo@example.test") == []
    state = json.loads(pt.cli("greylist", "list", "--json").stdout)
    assert [g["passed"] for g in state["triplets"]] == [None]
    # Coming back after the retry window is a first attempt again.
    assert attempt(pt, "127.0.0.30", "spam@example.org").code == 450
    assert pt.message_files("demo@example.test") == []


def test_greylist_allow_and_forget(postern_factory, dns):
    pt = daemon(postern_factory, dns, greylist={"mode": "all", "decide_at_data": "no", "min_delay": "60s"})
    assert attempt(pt, "127.0.3.1", "a@example.org").code == 450
    p = pt.cli("greylist", "allow", "127.0.3.77")
    assert p.returncode == 0 and "allowed 127.0.3.0/24" in p.stdout, p.stdout + p.stderr
    assert attempt(pt, "127.0.3.1", "a@example.org").code == 250
    p = pt.cli("greylist", "forget", "127.0.3.0/24")
    assert p.returncode == 0 and "2 entries removed" in p.stdout, p.stdout
    assert attempt(pt, "127.0.3.1", "a@example.org").code == 450
    p = pt.cli("greylist", "allow", "not a key")
    assert p.returncode == 2 and "is not an address" in p.stderr


def test_rate_limits_and_other_clients_keep_being_served(postern_factory, dns):
    pt = daemon(postern_factory, dns, policy={"enabled": "no"},
                ratelimit={"connections_per_minute": "3", "messages_per_hour": "2", "recipients_per_hour": "3"})
    conns = [SMTPConn("127.0.0.1", pt.port, source="127.0.0.40") for _ in range(3)]
    assert all(c.greeting.code == 220 for c in conns)
    c4 = SMTPConn("127.0.0.1", pt.port, source="127.0.0.40")
    assert c4.greeting == "421 4.7.0 %s Too many connections from your address, try again later" % HOST
    assert c4.wait_closed(5)[0]
    other = SMTPConn("127.0.0.1", pt.port, source="127.0.0.41")
    assert other.greeting.code == 220
    c = conns[0]
    c.ehlo()
    for i in range(2):
        assert c.cmd("MAIL FROM:<a@example.org>").code == 250
        assert c.cmd("RSET").code == 250
    assert c.cmd("MAIL FROM:<a@example.org>") == "450 4.7.1 Error: too many messages from you, try again later"
    other.ehlo()
    assert other.cmd("MAIL FROM:<a@example.org>").code == 250
    for rcpt in ("demo", "u1", "u2"):
        assert other.cmd("RCPT TO:<%s@example.test>" % rcpt).code == 250
    assert other.cmd("RCPT TO:<u3@example.test>") == \
        "450 4.7.1 <u3@example.test>: too many recipients from you, try again later"
    for x in conns + [other]:
        x.close()
    assert "reason=connections_per_minute" in pt.log()


def test_early_talker_is_refused_and_others_are_greeted(postern_factory, dns):
    pt = daemon(postern_factory, dns, policy={"enabled": "no", "greet_delay": "1s"})
    rude = SMTPConn("127.0.0.1", pt.port, source="127.0.0.50", greeting=False)
    rude.send("EHLO rude.example.org\r\n")
    t = time.monotonic()
    polite = SMTPConn("127.0.0.1", pt.port, source="127.0.0.51")
    waited = time.monotonic() - t
    assert polite.greeting == "220 %s ESMTP postern" % HOST and waited >= 0.9, waited
    assert rude.reply() == "554 5.7.1 %s Talking before the greeting is not allowed, closing connection" % HOST
    assert rude.wait_closed(5)[0]
    assert polite.ehlo().code == 250
    polite.close()
    assert "reason=early_talker client=127.0.0.50" in pt.log()


def test_dictionary_attack_is_cut_off(postern_factory, dns):
    pt = daemon(postern_factory, dns, policy={"enabled": "no", "max_unknown_recipients": "3"},
                ratelimit={"unknown_recipients_per_hour": "5"})
    c = SMTPConn("127.0.0.1", pt.port, source="127.0.0.60")
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    for i in range(3):
        assert c.cmd("RCPT TO:<guess%d@example.test>" % i).code == 550
    assert c.cmd("RCPT TO:<guess3@example.test>").code == 550
    assert c.reply() == "421 4.7.0 %s Too many unknown recipients, closing connection" % HOST
    assert c.wait_closed(5)[0]
    # Over its sessions: 4 so far, the 5th is allowed, the 6th closes.
    c = SMTPConn("127.0.0.1", pt.port, source="127.0.0.60")
    c.ehlo()
    c.cmd("MAIL FROM:<a@example.org>")
    assert c.cmd("RCPT TO:<guess4@example.test>").code == 550
    assert c.cmd("RCPT TO:<guess5@example.test>").code == 550
    assert c.reply().code == 421
    # Another client is served all along.
    assert attempt(pt, "127.0.0.61", "a@example.org").code == 250


def test_policy_explain(postern_factory, dns):
    pt = daemon(postern_factory, dns, greylist={"mode": "all"})
    p = pt.cli("policy", "explain", "--ip", "127.0.0.2", "--helo", "nx.example.org", "--from", "a@example.org",
               "--to", "demo@example.test", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["dnsbl.bl.test"]["scored"] and checks["dnsbl.bl.test"]["weight"] == 4.0
    assert checks["dnsbl.bl.test"]["result"] == "listed 127.0.0.2"
    assert checks["fcrdns"]["result"] == "no PTR record" and checks["fcrdns"]["weight"] == 1.5
    assert checks["helo.resolves"]["weight"] == 1.0
    assert checks["spf"]["result"] == "none (example.org)"
    assert out["score"] == 6.5
    # decide_at_data: without a message, the data stage graylists it.
    assert out["decision"] == "greylist" and out["retry_s"] == 2
    p = pt.cli("policy", "explain", "--ip", "192.0.2.7", "--helo", "client.example.org", "--from",
               "a@example.org", "--to", "demo@example.test")
    assert p.returncode == 0, p.stderr
    assert "pass (good.example.org)" in p.stdout and "score: 0.00" in p.stdout, p.stdout
    p = pt.cli("policy", "explain", "--ip", "192.0.2.6", "--helo", "client.example.org", "--from",
               "a@example.org", "--to", "demo@example.test", "--json")
    checks = {c["name"]: c for c in json.loads(p.stdout)["checks"]}
    assert checks["fcrdns"]["weight"] == 1.0 and "do not resolve back" in checks["fcrdns"]["result"], checks
    # explain only reads the graylist.
    assert json.loads(pt.cli("greylist", "list", "--json").stdout)["triplets"] == []
    p = pt.cli("policy", "explain", "--ip", "nope", "--helo", "x", "--from", "a@b", "--to", "c@d")
    assert p.returncode == 2 and "not an IPv4 or IPv6 address" in p.stderr
