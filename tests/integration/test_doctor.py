"""
`postern doctor`: against a loopback DNS server serving a correct zone
(everything passes, nothing to publish) and zones broken one way at a time
(each gives the right verdict for the right check, with a fix), with real
DKIM keys made by `postern dkim keygen` and a real store for the rua= check.
"""
import json
import re

import pytest

from dnsserver import DnsServer
from httpsserver import HttpsServer, TestCA, free_loopback_443
from posterntest import make_workdir

ADDR4 = "192.0.2.10"
ADDR6 = "2001:db8::10"
HOST = "mx.example.test"  # the harness's [server] hostname
DOMAIN = "example.test"


def reverse4(a):
    return ".".join(reversed(a.split("."))) + ".in-addr.arpa"


def reverse6(a):
    import ipaddress
    return ipaddress.ip_address(a).reverse_pointer


GOOD_POLICY = b"version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 604800\r\n"
POLICY_PATH = "/.well-known/mta-sts.txt"


@pytest.fixture(scope="module")
def sts():
    """An HTTPS server for mta-sts.example.test under a test CA; its policy
    is sts.policy (status, body, headers), changeable per test."""
    d = make_workdir("postern-sts-")
    ca = TestCA(d / "ca")
    cert, key = ca.issue(d, ["mta-sts." + DOMAIN])
    addr = free_loopback_443()

    class State:
        pass
    st = State()
    st.ca, st.addr, st.dir = ca, addr, d
    st.policy = (200, GOOD_POLICY, {"Content-Type": "text/plain"})
    with HttpsServer(addr, 443, cert, key, {POLICY_PATH: lambda host, path: st.policy}) as srv:
        st.server = srv
        yield st


@pytest.fixture(autouse=True)
def reset_policy(request):
    if "sts" in request.fixturenames:
        st = request.getfixturevalue("sts")
        st.policy = (200, GOOD_POLICY, {"Content-Type": "text/plain"})


STS_ADDR = {}


def good_zones(dkim_records):
    z = {
        DOMAIN: [("MX", (10, HOST)), ("TXT", "v=spf1 ip4:%s ip6:%s -all" % (ADDR4, ADDR6)),
                 ("TXT", "google-site-verification=abc")],
        HOST: [("A", ADDR4), ("AAAA", ADDR6), ("TXT", "v=spf1 a -all")],
        reverse4(ADDR4): [("PTR", HOST)],
        reverse6(ADDR6): [("PTR", HOST)],
        "_dmarc." + DOMAIN: [("TXT", "v=DMARC1; p=reject; rua=mailto:demo@example.test")],
        "_mta-sts." + DOMAIN: [("TXT", "v=STSv1; id=20261130")],
        "_smtp._tls." + DOMAIN: [("TXT", "v=TLSRPTv1; rua=mailto:demo@example.test")],
    }
    for name, text in dkim_records.items():
        z[name] = [("TXT", [text[i:i + 255] for i in range(0, len(text), 255)])]
    if "addr" in STS_ADDR:
        z["mta-sts." + DOMAIN] = [("A", STS_ADDR["addr"])]
    return z


@pytest.fixture
def site(postern_factory, sts):
    """A configured postern (not running) with two DKIM keys and the
    mailbox demo@example.test; returns (postern, {record name: text})."""
    STS_ADDR["addr"] = sts.addr
    STS_ADDR["ca"] = str(sts.ca.cert_path)
    pt = postern_factory(start=False)
    records = {}
    for sel, alg in (("rsa1", "rsa"), ("ed1", "ed25519")):
        p = pt.cli("dkim", "keygen", "--domain", DOMAIN, "--selector", sel, "--algorithm", alg)
        assert p.returncode == 0, p.stderr
        m = re.search(r"^(\S+)\. IN TXT \((.*)\)", p.stdout, re.M | re.S)
        assert m, p.stdout
        records[m.group(1)] = "".join(re.findall(r'"([^"]*)"', m.group(2)))
    return pt, records


def doctor(pt, dns, *args):
    p = pt.cli("doctor", "--resolver", dns.address, "--dns-timeout", "2s", "--ca-file", STS_ADDR["ca"], "--json",
               *args)
    assert p.returncode in (0, 1), "rc=%d\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    out = json.loads(p.stdout)
    assert (p.returncode == 1) == (out["summary"]["fail"] > 0), p.stdout
    return out


def verdicts(out, prefix):
    return [c for c in out["checks"] if c["check"] == prefix or c["check"].startswith(prefix + " ")]


def test_correct_zone_passes_everything(build, site):
    pt, records = site
    with DnsServer(good_zones(records)) as dns:
        out = doctor(pt, dns, "--address", ADDR4, "--address", ADDR6)
    bad = [c for c in out["checks"] if c["status"] != "pass"]
    assert bad == [], json.dumps(bad, indent=1)
    assert out["publish"] == []
    assert out["domain"] == DOMAIN and out["hostname"] == HOST
    names = {c["check"] for c in out["checks"]}
    for want in ("mx", "host", "ptr " + ADDR4, "ptr " + ADDR6, "spf", "spf helo", "dkim rsa1", "dkim ed1",
                 "dmarc", "dmarc rua", "mta-sts", "mta-sts policy", "tls-rpt"):
        assert want in names, names
    # Without --address, the host's own A/AAAA records are the addresses.
    with DnsServer(good_zones(records)) as dns:
        out = doctor(pt, dns)
    assert out["addresses"] == [ADDR4, ADDR6]


def test_human_output_has_fixes_and_records(build, site):
    pt, records = site
    z = good_zones(records)
    del z["_dmarc." + DOMAIN]
    with DnsServer(z) as dns:
        p = pt.cli("doctor", "--resolver", dns.address, "--address", ADDR4, "--ca-file", STS_ADDR["ca"])
    assert p.returncode == 1
    assert re.search(r"FAIL\s+dmarc\s", p.stdout), p.stdout
    assert "Records to publish" in p.stdout
    assert '_dmarc.example.test. IN TXT "v=DMARC1; p=quarantine; rua=mailto:' in p.stdout


BROKEN = [
    # (what is broken, change to the zone, check, status, text in the detail)
    ("no MX", lambda z: z[DOMAIN].remove(("MX", (10, HOST))), "mx", "fail", "no MX"),
    ("MX elsewhere", lambda z: z[DOMAIN].__setitem__(0, ("MX", (10, "mx.other.test"))), "mx", "warn",
     "does not name this host"),
    ("null MX", lambda z: z[DOMAIN].__setitem__(0, ("MX", (0, ""))), "mx", "fail", "null MX"),
    ("no PTR", lambda z: z.pop(reverse4(ADDR4)), "ptr " + ADDR4, "fail", "no PTR"),
    ("PTR not confirmed", lambda z: z.__setitem__(reverse4(ADDR4), [("PTR", "nowhere.test")]), "ptr " + ADDR4,
     "fail", "not forward-confirmed"),
    ("PTR other name", lambda z: (z.__setitem__(reverse4(ADDR4), [("PTR", "host.other.test")]),
                                  z.__setitem__("host.other.test", [("A", ADDR4)])),
     "ptr " + ADDR4, "warn", "HELO"),
    ("no SPF", lambda z: z[DOMAIN].remove(("TXT", "v=spf1 ip4:%s ip6:%s -all" % (ADDR4, ADDR6))), "spf", "fail",
     "no SPF record"),
    ("two SPF", lambda z: z[DOMAIN].append(("TXT", "v=spf1 -all")), "spf", "fail", "2 SPF records"),
    ("invalid SPF", lambda z: z.__setitem__(DOMAIN, [("MX", (10, HOST)), ("TXT", "v=spf1 ip4:300.1.1.1 -all")]),
     "spf", "fail", "invalid"),
    ("SPF without us", lambda z: z.__setitem__(DOMAIN, [("MX", (10, HOST)), ("TXT", "v=spf1 ip4:198.51.100.1 -all")]),
     "spf", "fail", "does not authorise"),
    ("SPF over 10 lookups", lambda z: (
        z.__setitem__(DOMAIN, [("MX", (10, HOST)), ("TXT", "v=spf1 " + " ".join("a:h%d.example.test" % i
                                                                                for i in range(11)) + " -all")])),
     "spf", "fail", "permerror"),
    ("SPF timeout", lambda z: z.__setitem__(DOMAIN, [("MX", (10, HOST)), ("TIMEOUT", "TXT")]), "spf", "warn",
     "failed"),
    ("DKIM missing", lambda z: z.pop("rsa1._domainkey." + DOMAIN), "dkim rsa1", "fail", "not published"),
    ("DKIM mismatch", lambda z: z.__setitem__("ed1._domainkey." + DOMAIN,
                                              [("TXT", "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")]),
     "dkim ed1", "fail", "does not match"),
    ("no DMARC", lambda z: z.pop("_dmarc." + DOMAIN), "dmarc", "fail", "no DMARC record"),
    ("DMARC p=none", lambda z: z.__setitem__("_dmarc." + DOMAIN, [("TXT", "v=DMARC1; p=none; rua=mailto:demo@example.test")]),
     "dmarc", "warn", "p=none"),
    ("DMARC rua to nobody", lambda z: z.__setitem__("_dmarc." + DOMAIN,
                                                    [("TXT", "v=DMARC1; p=reject; rua=mailto:nobody@example.test")]),
     "dmarc rua", "fail", "no mailbox"),
    ("DMARC rua elsewhere, unauthorised", lambda z: z.__setitem__(
        "_dmarc." + DOMAIN, [("TXT", "v=DMARC1; p=reject; rua=mailto:r@reports.test")]),
     "dmarc rua", "fail", "does not authorise"),
    ("no MTA-STS", lambda z: z.pop("_mta-sts." + DOMAIN), "mta-sts", "warn", "no MTA-STS"),
    ("no TLS-RPT", lambda z: z.pop("_smtp._tls." + DOMAIN), "tls-rpt", "warn", "no TLS-RPT"),
]


@pytest.mark.parametrize("what,change,check,status,text", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_records(build, site, what, change, check, status, text):
    pt, records = site
    z = good_zones(records)
    change(z)
    with DnsServer(z) as dns:
        out = doctor(pt, dns, "--address", ADDR4)
    got = verdicts(out, check)
    assert got, "no verdict for %s: %s" % (check, json.dumps(out["checks"], indent=1))
    assert any(c["status"] == status and text in c["detail"] for c in got), json.dumps(got, indent=1)
    if status != "pass":
        assert all(c["fix"] for c in got if c["status"] == status)
    # Only what was broken is reported as broken.
    # (An MX elsewhere is also outside the MTA-STS policy: rightly reported.)
    also = ("mta-sts policy",) if what == "MX elsewhere" else ()
    others = [c for c in out["checks"]
              if c["status"] != "pass" and not c["check"].startswith(check) and c["check"] not in also]
    assert others == [], json.dumps(others, indent=1)


def test_external_rua_authorised(build, site):
    pt, records = site
    z = good_zones(records)
    z["_dmarc." + DOMAIN] = [("TXT", "v=DMARC1; p=reject; rua=mailto:r@reports.test")]
    z["example.test._report._dmarc.reports.test"] = [("TXT", "v=DMARC1")]
    with DnsServer(z) as dns:
        out = doctor(pt, dns, "--address", ADDR4)
    assert [c["status"] for c in verdicts(out, "dmarc rua")] == ["pass"]


def test_dns_lists(build, site):
    pt, records = site
    z = good_zones(records)
    z["10.2.0.192.bl.test"] = [("A", "127.0.0.2")]
    z["10.2.0.192.refusing.test"] = [("A", "127.255.255.254")]
    z["10.2.0.192.wl.test"] = [("A", "127.0.10.2")]
    with DnsServer(z) as dns:
        out = doctor(pt, dns, "--address", ADDR4, "--dnsbl", "bl.test", "--dnsbl", "clean.test",
                     "--dnsbl", "refusing.test", "--dnswl", "wl.test")
    by = {c["check"]: c for c in out["checks"]}
    assert by["dnsbl bl.test"]["status"] == "fail" and "LISTED" in by["dnsbl bl.test"]["detail"]
    assert by["dnsbl clean.test"]["status"] == "pass"
    assert by["dnsbl refusing.test"]["status"] == "warn"
    assert by["dnswl wl.test"]["status"] == "pass"


def test_usage_errors(build, site):
    pt, _ = site
    assert pt.cli("doctor", "--address", "not-an-ip").returncode == 2
    assert pt.cli("doctor", "--bogus").returncode == 2
    p = pt.cli("doctor", "--help")
    assert p.returncode == 0 and "records to publish" in p.stdout


STS_CASES = [
    ("policy missing", (404, b"no\n", {}), "fail", "HTTP 404"),
    ("redirect", (302, b"", {"Location": "https://elsewhere.test/p"}), "fail", "redirect"),
    ("invalid policy", (200, b"<html>hello</html>", {}), "fail", "invalid"),
    ("MX not covered", (200, b"version: STSv1\nmode: enforce\nmx: other.example.test\nmax_age: 86400\n", {}),
     "fail", "not in the policy"),
    ("testing mode", (200, b"version: STSv1\nmode: testing\nmx: *.example.test\nmax_age: 86400\n", {}),
     "warn", "mode testing"),
    ("too large", (200, b"version: STSv1\n" + b"x: y\n" * 20000, {}), "fail", "larger than 64 KiB"),
]


@pytest.mark.parametrize("what,policy,status,text", STS_CASES, ids=[c[0] for c in STS_CASES])
def test_mtasts_policy(build, site, sts, what, policy, status, text):
    pt, records = site
    sts.policy = policy
    with DnsServer(good_zones(records)) as dns:
        out = doctor(pt, dns, "--address", ADDR4)
    got = verdicts(out, "mta-sts policy")
    assert len(got) == 1 and got[0]["status"] == status and text in got[0]["detail"], json.dumps(got, indent=1)
    assert got[0]["fix"]
    assert sts.server.requests[-1] == ("mta-sts." + DOMAIN, POLICY_PATH)


def test_mtasts_certificate_for_another_name_is_refused(build, site, sts):
    pt, records = site
    cert, key = sts.ca.issue(sts.dir, ["wrong.example.test"])
    addr = free_loopback_443()
    z = good_zones(records)
    z["mta-sts." + DOMAIN] = [("A", addr)]
    with HttpsServer(addr, 443, cert, key, {POLICY_PATH: (200, GOOD_POLICY, {})}), DnsServer(z) as dns:
        out = doctor(pt, dns, "--address", ADDR4)
    got = verdicts(out, "mta-sts policy")
    assert got[0]["status"] == "fail" and "cannot fetch" in got[0]["detail"], got


def test_configured_lists_and_report_addresses(build, postern_factory, sts):
    """Without --dnsbl, the doctor checks the [dnsbl] zones with their
    return-code rules; the DMARC and TLS-RPT records it suggests send
    reports to the [reports] addresses."""
    STS_ADDR["addr"] = sts.addr
    STS_ADDR["ca"] = str(sts.ca.cert_path)
    pt = postern_factory(start=False, config={
        "dnsbl": {"blocklists": "bl.test=3 127.0.0.9=ignore; other.test",
                  "allowlists": "wl.test=-1 127.0.0.255=error"},
        "reports": {"dmarc_address": "dmarc-rua@example.test", "tls_address": "tls-rua@example.test"},
    })
    z = good_zones({})
    del z["_dmarc." + DOMAIN]
    del z["_smtp._tls." + DOMAIN]
    z["10.2.0.192.bl.test"] = [("A", "127.0.0.9")]        # ignored by the rule
    z["10.2.0.192.other.test"] = [("A", "127.0.0.2")]     # listed
    z["10.2.0.192.wl.test"] = [("A", "127.0.0.255")]      # the list refused us
    with DnsServer(z) as dns:
        out = doctor(pt, dns, "--address", ADDR4)
    by = {c["check"]: c for c in out["checks"]}
    assert by["dnsbl bl.test"]["status"] == "pass", by["dnsbl bl.test"]
    assert by["dnsbl other.test"]["status"] == "fail"
    assert by["dnswl wl.test"]["status"] == "warn" and "could not be checked" in by["dnswl wl.test"]["detail"]
    assert any("rua=mailto:dmarc-rua@example.test" in line for line in out["publish"]), out["publish"]
    assert any("rua=mailto:tls-rua@example.test" in line for line in out["publish"]), out["publish"]


@pytest.mark.parametrize("spf,status", [
    ("v=spf1 ip4:%s a:relay.provider.test -all" % ADDR4, "pass"),
    ("v=spf1 ip4:%s -all" % ADDR4, "fail"),
])
def test_spf_must_allow_the_relay(build, postern_factory, sts, spf, status):
    """With a [relay] host, mail that leaves through it comes from its
    addresses: the domain's SPF record must authorise them too."""
    STS_ADDR["addr"] = sts.addr
    STS_ADDR["ca"] = str(sts.ca.cert_path)
    pt = postern_factory(start=False, config={"relay": {"host": "relay.provider.test", "port": "587"}})
    z = good_zones({})
    z[DOMAIN] = [("MX", (10, HOST)), ("TXT", spf)]
    z["relay.provider.test"] = [("A", "198.51.100.25")]
    with DnsServer(z) as dns:
        out = doctor(pt, dns, "--address", ADDR4)
    got = verdicts(out, "spf relay")
    assert [c["status"] for c in got] == [status], json.dumps(got, indent=1)
    assert "198.51.100.25" in got[0]["detail"]
    if status == "fail":
        assert "a:relay.provider.test" in got[0]["fix"]


def test_domain_block_list(build, site):
    """--dbl asks DOMAIN.ZONE (a domain list such as Spamhaus DBL), once."""
    pt, records = site
    z = good_zones(records)
    z["example.test.dbl.test"] = [("A", "127.0.1.2")]
    with DnsServer(z) as dns:
        out = doctor(pt, dns, "--address", ADDR4, "--dbl", "dbl.test", "--dbl", "clean-dbl.test")
    by = {c["check"]: c for c in out["checks"]}
    assert by["dbl dbl.test"]["status"] == "fail" and "example.test is LISTED" in by["dbl dbl.test"]["detail"]
    assert by["dbl clean-dbl.test"]["status"] == "pass"
    assert dns.count("example.test.dbl.test", "A") >= 1
