"""
`postern spf check` when DNS misbehaves, over a real DNS server on loopback
(tests/lib/dnsserver.py) that fails on purpose.

What RFC 7208 asks: a DNS error or a timeout while looking up the record or
evaluating a mechanism ends the check with temperror (sections 4.4 and 5:
"If the DNS lookup returns a server failure (RCODE 2) or some other error
(RCODE other than 0 or 3), or if the lookup times out, then check_host()
terminates immediately with the result 'temperror'"), except while
validating the names of a ptr mechanism, where the name is skipped (section
5.5); a record that does not parse is a permerror (section 4.6). A CNAME
loop is a DNS error (RFC 1034 section 3.6.2; libunbound answers SERVFAIL for
it), so it is a temperror where any DNS error is, and is skipped inside ptr,
as the suite's ptr-cname-loop test says. Long records come in several
character-strings, joined without spaces (section 3.3), and an answer too
large for UDP is fetched again over TCP.

Every run must also end on its own (no hang: within the --dns-timeout given,
2s here, plus a margin), with exit status 0 and no sanitizer report.
"""

import pytest

from dnsserver import DnsServer
from spfsuite import describe, postern_spf, spf_builds

TIMEOUT = 2.0           # --dns-timeout
MARGIN = 3.0            # what the process may take beyond it
IP = "11.22.33.44"
HELO = "mail.example.net"


def pytest_generate_tests(metafunc):
    if "spf_build" in metafunc.fixturenames:
        metafunc.parametrize("spf_build", spf_builds())


@pytest.fixture(scope="module")
def dns():
    with DnsServer() as d:
        yield d
        assert not d.errors


def check(build, dns, zones, sender="u@example.com", ip=IP, helo=HELO, **kw):
    dns.set_zones(zones)
    dns.clear_queries()
    run = postern_spf(build, dns.address, ip, sender, helo, dns_timeout="%ds" % TIMEOUT, timeout=30, **kw)
    assert run.status == 0, describe(run)
    assert run.json is not None, describe(run)
    assert run.elapsed < TIMEOUT + MARGIN, "took %.1fs\n%s" % (run.elapsed, describe(run))
    return run


def result(run):
    return run.json.get("result")


POLICY = "v=spf1 ip4:11.22.33.0/24 -all"


# --- server failures and timeouts: temperror

@pytest.mark.parametrize("mode", ["SERVFAIL", "REFUSED", "TIMEOUT"])
def test_record_lookup_failure_is_temperror(spf_build, dns, mode):
    run = check(spf_build, dns, {"example.com": [("TXT", POLICY), mode]})
    assert result(run) == "temperror", describe(run)
    assert run.json.get("problem"), describe(run)


@pytest.mark.parametrize("mode,mech", [("SERVFAIL", m) for m in (
    "include:x.example.org", "a:x.example.org", "mx:x.example.org", "exists:x.example.org",
    "redirect=x.example.org")] + [("TIMEOUT", "include:x.example.org"), ("TIMEOUT", "a:x.example.org")])
def test_mechanism_lookup_failure_is_temperror(spf_build, dns, mode, mech):
    # no "all" with redirect=: it would be ignored (section 6.1)
    tail = "" if mech.startswith("redirect") else " -all"
    zones = {"example.com": [("TXT", "v=spf1 ip4:192.0.2.1 %s%s" % (mech, tail))],
             "x.example.org": [("TXT", "v=spf1 +all"), ("A", IP), ("MX", (10, "x.example.org")), mode]}
    run = check(spf_build, dns, zones)
    assert result(run) == "temperror", describe(run)


def test_timeout_is_bounded_by_dns_timeout(spf_build, dns):
    run = check(spf_build, dns, {"example.com": ["TIMEOUT"]})
    assert result(run) == "temperror", describe(run)
    # The option is honoured: not far beyond 2s (libunbound alone waits ~17s).
    assert run.elapsed < TIMEOUT + MARGIN
    tr = [t for t in run.json.get("trace") or [] if t.get("query") == "TXT example.com"]
    assert tr and tr[0].get("status") in ("timeout", "tempfail"), describe(run)


def test_timeout_of_a_type_nobody_asks_does_not_matter(spf_build, dns):
    # RFC 7208 section 4.4: only TXT is looked up; a server that never answers
    # type SPF (99) must not delay or change anything.
    run = check(spf_build, dns, {"example.com": [("TXT", POLICY), ("TIMEOUT", "SPF")]})
    assert result(run) == "pass" and run.elapsed < TIMEOUT, describe(run)
    assert dns.count(qtype="SPF") == 0


def test_ptr_name_that_fails_is_skipped(spf_build, dns):
    # Section 5.5: "If a DNS error occurs while doing an A RR lookup, then
    # that domain name is skipped and the search continues."
    zones = {"example.com": [("TXT", "v=spf1 ptr -all")],
             "44.33.22.11.in-addr.arpa": [("PTR", "bad.example.com"), ("PTR", "good.example.com")],
             "bad.example.com": ["SERVFAIL"],
             "good.example.com": [("A", IP)]}
    run = check(spf_build, dns, zones)
    assert result(run) == "pass", describe(run)


# --- truncation and TCP

def test_truncated_udp_answer_is_retried_over_tcp(spf_build, dns):
    run = check(spf_build, dns, {"example.com": [("TXT", POLICY), "TRUNCATE"]})
    assert result(run) == "pass", describe(run)
    assert dns.count("example.com", "TXT", transport="tcp") >= 1


def test_huge_txt_record_in_many_strings(spf_build, dns):
    # 3 KB of mechanisms in 255-byte strings, cut in the middle of terms:
    # too big for UDP (unbound offers 1232 bytes), so over TCP, and joined
    # without spaces (section 3.3). The matching term is the last one.
    terms = ["ip4:198.51.%d.%d" % (i // 200, i % 200) for i in range(180)]    # .0.0 to .0.179
    policy = "v=spf1 " + " ".join(terms) + " ip4:" + IP + " -all"
    b = policy.encode()
    assert len(b) > 2048
    strings = [b[i:i + 255] for i in range(0, len(b), 255)]
    run = check(spf_build, dns, {"example.com": [("TXT", strings)]})
    assert result(run) == "pass", describe(run)
    assert dns.count("example.com", "TXT", transport="tcp") >= 1
    run = check(spf_build, dns, {"example.com": [("TXT", strings)]}, ip="198.51.0.179")
    assert result(run) == "pass", describe(run)
    run = check(spf_build, dns, {"example.com": [("TXT", strings)]}, ip="198.51.0.180")
    assert result(run) == "fail", describe(run)


def test_string_boundary_is_not_a_space(spf_build, dns):
    # "ip4:11.22.3" + "3.0/24" is one term; with a space added it would be
    # a syntax error (permerror), with nothing it is a pass.
    run = check(spf_build, dns, {"example.com": [("TXT", ["v=spf1 ip4:11.22.3", "3.0/24 -all"])]})
    assert result(run) == "pass", describe(run)


# --- CNAMEs

def test_cname_to_the_record(spf_build, dns):
    zones = {"example.com": [("CNAME", "spf.example.org")], "spf.example.org": [("TXT", POLICY)]}
    assert result(check(spf_build, dns, zones)) == "pass"


@pytest.mark.parametrize("where", ["record", "a", "include"])
def test_cname_loop_is_temperror_without_hanging(spf_build, dns, where):
    loop = {"loop1.example.com": [("CNAME", "loop2.example.com")],
            "loop2.example.com": [("CNAME", "loop1.example.com")]}
    if where == "record":
        zones = dict(loop, **{"example.com": [("CNAME", "loop1.example.com")]})
    elif where == "a":
        zones = dict(loop, **{"example.com": [("TXT", "v=spf1 a:loop1.example.com -all")]})
    else:
        zones = dict(loop, **{"example.com": [("TXT", "v=spf1 include:loop1.example.com -all")]})
    run = check(spf_build, dns, zones)
    assert result(run) == "temperror", describe(run)
    assert run.elapsed < TIMEOUT, describe(run)


def test_self_cname_inside_ptr_is_skipped(spf_build, dns):
    # The suite's ptr-cname-loop: the name's A lookup loops, the name is skipped.
    zones = {"example.com": [("TXT", "v=spf1 ptr ?all")],
             "44.33.22.11.in-addr.arpa": [("PTR", "loop.example.com")],
             "loop.example.com": [("CNAME", "LOOP.example.com.")]}
    run = check(spf_build, dns, zones)
    assert result(run) == "neutral", describe(run)


# --- malformed records: permerror

@pytest.mark.parametrize("record", [
    "v=spf1 ip4:11.22.33.300 -all",
    "v=spf1 ip4:11.22.33.0/33 -all",
    "v=spf1 ip6:2001:db8::/129 -all",
    "v=spf1 a: -all",
    "v=spf1 include -all",
    "v=spf1 foo:bar -all",
    "v=spf1 -all redirect=a.example.com redirect=b.example.com",
    "v=spf1 exists:%{x}.example.com -all",
    "v=spf1 a:%{d",
    "v=spf1 ip4:11.22.33.0/24\t-all",
])
def test_bad_syntax_is_permerror(spf_build, dns, record):
    run = check(spf_build, dns, {"example.com": [("TXT", record)]})
    assert result(run) == "permerror", describe(run)
    assert run.json.get("problem"), describe(run)


def test_two_records_is_permerror(spf_build, dns):
    run = check(spf_build, dns, {"example.com": [("TXT", POLICY), ("TXT", "v=spf1 -all")]})
    assert result(run) == "permerror", describe(run)


def test_txt_without_strings(spf_build, dns):
    # RFC 1035 wants one string at least. Such a record is no SPF record
    # (none, section 4.5); a resolver that rejects the answer would make it
    # a temperror. Anything else, or a crash, is wrong.
    run = check(spf_build, dns, {"example.com": [("TXT", [])]})
    assert result(run) in ("none", "temperror"), describe(run)
    run = check(spf_build, dns, {"example.com": [("TXT", []), ("TXT", POLICY)]})
    assert result(run) in ("pass", "temperror"), describe(run)


def test_binary_txt_record(spf_build, dns):
    run = check(spf_build, dns, {"example.com": [("TXT", b"v=spf1 \x00\xff\x80 -all")]})
    assert result(run) == "permerror", describe(run)
    run = check(spf_build, dns, {"example.com": [("TXT", b"\x00\xff binary"), ("TXT", POLICY)]})
    assert result(run) == "pass", describe(run)


# --- malformed DNS messages: temperror, no crash, no hang

@pytest.mark.parametrize("mode", ["GARBAGE", "SHORT", "WRONG_ID"])
def test_malformed_answer_is_temperror(spf_build, dns, mode):
    run = check(spf_build, dns, {"example.com": [("TXT", POLICY), mode]})
    assert result(run) == "temperror", describe(run)


@pytest.mark.parametrize("mode", ["GARBAGE", "SHORT"])
def test_malformed_answer_for_a_mechanism(spf_build, dns, mode):
    zones = {"example.com": [("TXT", "v=spf1 a:h.example.com -all")], "h.example.com": [("A", IP), mode]}
    run = check(spf_build, dns, zones)
    assert result(run) == "temperror", describe(run)


# --- every question goes to the configured resolver

@pytest.mark.parametrize("ip", ["10.1.2.3", "172.16.0.9", "192.168.1.5", "192.0.2.5", "100.64.1.1",
                                "2001:db8::5", "fd00::5"])
def test_reverse_lookups_reach_the_resolver(spf_build, dns, ip):
    """libunbound answers the reverse zones of private, shared and
    documentation networks itself (NXDOMAIN, RFC 6303 "AS112" defaults)
    unless told not to; postern forwards to a configured resolver, which is
    the one that knows a LAN's reverse zones."""
    import ipaddress
    zones = {"example.com": [("TXT", "v=spf1 ptr -all")],
             ipaddress.ip_address(ip).reverse_pointer: [("PTR", "host.example.com")],
             "host.example.com": [("AAAA" if ":" in ip else "A", ip)]}
    run = check(spf_build, dns, zones, ip=ip)
    assert dns.count(ipaddress.ip_address(ip).reverse_pointer, "PTR") >= 1, describe(run)
    assert result(run) == "pass", describe(run)


@pytest.mark.parametrize("domain", ["example.test", "host.home.arpa"])
def test_special_use_names_reach_the_resolver(spf_build, dns, domain):
    """Same for libunbound's default local zones test. and home.arpa.: a test
    setup (or a LAN) serves them from the configured resolver. (invalid. and
    onion. are different: RFC 6761 section 6.4 and RFC 7686 want those
    answered NXDOMAIN locally.)"""
    run = check(spf_build, dns, {domain: [("TXT", POLICY)]}, sender="u@" + domain)
    assert dns.count(domain, "TXT") >= 1, describe(run)
    assert result(run) == "pass", describe(run)


# --- the CLI's contract around these

def test_json_fields(spf_build, dns):
    run = check(spf_build, dns, {"example.com": [("TXT", "v=spf1 a:h.example.com ip4:11.22.33.0/24 -all")]})
    j = run.json
    assert j["result"] == "pass" and j["identity"] == "mailfrom" and j["domain"] == "example.com"
    assert j["sender"] == "u@example.com" and j["ip"] == IP and j["explanation"] is None
    assert j["lookups"] == 1 and j["void_lookups"] == 1
    assert j["received_spf"].startswith("pass ") and "client-ip=%s" % IP in j["received_spf"]
    assert [(t["query"], t["status"]) for t in j["trace"]] == [("TXT example.com", "answer"),
                                                               ("A h.example.com", "nxdomain")]


def test_helo_identity_and_null_sender(spf_build, dns):
    zones = {HELO: [("TXT", POLICY)], "example.com": [("TXT", "v=spf1 -all")]}
    run = check(spf_build, dns, zones, identity="helo")
    assert run.json["identity"] == "helo" and run.json["domain"] == HELO, describe(run)
    assert result(run) == "pass", describe(run)
    run = check(spf_build, dns, zones, sender="")
    assert run.json["domain"] == HELO and run.json["sender"] == "postmaster@" + HELO, describe(run)
    assert result(run) == "pass", describe(run)


@pytest.mark.parametrize("argv", [
    ["--sender", "u@example.com", "--helo", HELO],                         # no --ip
    ["--ip", "300.1.1.1", "--sender", "u@example.com", "--helo", HELO],
    ["--ip", IP, "--sender", "u@example.com", "--helo", HELO, "--identity", "rcpt"],
    ["--ip", IP, "--sender", "u@example.com", "--helo", HELO, "--dns-timeout", "soon"],
])
def test_usage_errors_exit_2(spf_build, dns, argv):
    import subprocess
    from posterntest import ROOT, build_env
    p = subprocess.run([str(ROOT / spf_build / "postern"), "spf", "check", "--resolver", dns.address] + argv
                       + ["--json"], capture_output=True, env=build_env(spf_build), timeout=30)
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
