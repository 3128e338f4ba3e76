"""
`postern dmarc check` against a real DNS server on loopback
(tests/lib/dnsserver.py), on every build (build/postern, build-asan/postern;
POSTERN_BUILDS overrides).

What is checked, with the RFC text it follows:

- alignment, relaxed and strict, of SPF and DKIM (RFC 7489 section 3.1);
- policy discovery (section 6.6.3): the From domain first, then the
  Organizational Domain from the Public Suffix List; several DMARC records
  mean none; records not starting with v=DMARC1 are discarded; a DNS error
  is temperror; CNAMEs are followed and TXT strings joined;
- the policy applied: p=, sp= for subdomains, np= for subdomains that do not
  exist (RFC 9091: NXDOMAIN or NODATA for A, AAAA and MX), and the pct=
  draw (section 6.6.4) through --sample;
- the From fields (section 6.6.1): several addresses or several fields are
  each evaluated and the strictest outcome wins; none, or one that does not
  parse, is permerror with disposition reject;
- the DNS trace the CLI prints matches the questions the server received.

Every run must end on its own, exit 0 and print no sanitizer report.
"""
import json
import subprocess
import time

import pytest

from dnsserver import DnsServer
from posterntest import ROOT, available_builds, build_env, sanitizer_report

TIMEOUT = 1.0   # --dns-timeout
MARGIN = 4.0

ZONES = {
    "_dmarc.example.com": [("TXT", "v=DMARC1; p=reject; sp=quarantine; np=reject; "
                                   "rua=mailto:agg@example.com!10m; ruf=mailto:f@example.com; fo=1; pct=100"),
                           ("TXT", "google-site-verification=abc")],
    "example.com": [("A", "192.0.2.1"), ("MX", (10, "mx.example.com"))],
    "sub.example.com": [("A", "192.0.2.2")],
    "mxonly.example.com": [("MX", (10, "mx.example.com"))],
    "txtonly.example.com": [("TXT", "exists without an address")],
    "_dmarc.strict.example": [("TXT", "v=DMARC1; p=reject; adkim=s; aspf=s")],
    "_dmarc.multi.example": [("TXT", "v=DMARC1; p=reject"), ("TXT", "v=DMARC1; p=none")],
    "_dmarc.broken.example": [("TXT", "v=DMARC1; p=reject; pct=150")],
    "_dmarc.badp.example": [("TXT", "v=DMARC1; p=rejekt; rua=mailto:r@badp.example")],
    "_dmarc.pct.example": [("TXT", "v=DMARC1; p=reject; pct=30")],
    "_dmarc.servfail.example": ["SERVFAIL"],
    "_dmarc.timeout.example": ["TIMEOUT"],
    "_dmarc.split.example": [("TXT", ["v=DMARC1; p=quar", "antine; rua=mailto:a@split.example"])],
    "_dmarc.alias.example": [("CNAME", "policy.dmarc-host.example")],
    "policy.dmarc-host.example": [("TXT", "v=DMARC1; p=reject")],
    "_dmarc.example.co.uk": [("TXT", "v=DMARC1; p=quarantine")],
    "_dmarc.xn--bcher-kva.example": [("TXT", "v=DMARC1; p=reject")],
    "_dmarc.spfonly.example": [("TXT", "v=spf1 -all")],
}


def pytest_generate_tests(metafunc):
    if "dmarc_build" in metafunc.fixturenames:
        metafunc.parametrize("dmarc_build", available_builds())


@pytest.fixture(scope="module")
def dns():
    with DnsServer(ZONES) as d:
        yield d
        assert not d.errors


class Run:
    def __init__(self, argv, proc, elapsed):
        self.argv = argv
        self.status = proc.returncode
        self.stdout = proc.stdout.decode("utf-8", "replace")
        self.stderr = proc.stderr.decode("utf-8", "replace")
        self.elapsed = elapsed
        try:
            self.json = json.loads(self.stdout)
        except ValueError:
            self.json = None

    def __str__(self):
        return "argv: %s\nstatus %s, %.2fs\nstdout: %s\nstderr: %s" % (
            self.argv, self.status, self.elapsed, self.stdout[:3000], self.stderr[-2000:])

    __repr__ = __str__


def postern_dmarc(build, dns, *args, json_out=True, timeout=30):
    argv = [str(ROOT / build / "postern"), "dmarc", "check", "--resolver", dns.address,
            "--dns-timeout", "%ds" % TIMEOUT] + list(args) + (["--json"] if json_out else [])
    t = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, env=build_env(build), timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("postern dmarc check did not finish in %ds: %s" % (timeout, argv))
    run = Run(argv, p, time.monotonic() - t)
    rep = sanitizer_report(run.stderr)
    assert rep is None, "sanitizer report from %s:\n%s" % (argv, rep)
    assert p.returncode >= 0, "postern died by signal %d\n%s" % (-p.returncode, run)
    return run


def check(build, dns, *args):
    dns.clear_queries()
    run = postern_dmarc(build, dns, *args)
    assert run.status == 0, run
    assert run.json is not None, run
    assert run.elapsed < TIMEOUT + MARGIN, run
    return run


def queried(dns):
    return [(q.name, q.qtype) for q in dns.queries]


# --- alignment (RFC 7489 section 3.1)

def test_spf_aligned_relaxed_passes(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "Alice <alice@example.com>", "--spf", "pass",
                "--spf-domain", "bounces.example.com")
    j = run.json
    assert (j["result"], j["disposition"], j["header_from"]) == ("pass", "none", "example.com"), run
    assert j["spf_aligned"] and not j["dkim_aligned"], run
    assert j["policy"] == "reject" and j["policy_tag"] == "p", run
    assert j["authentication_results"].startswith("dmarc=pass (p=reject sp=quarantine np=reject dis=none) "
                                                  "header.from=example.com"), run
    # The fields aggregate reports need.
    rec = j["domains"][0]["record"]
    assert rec["rua"] == [{"uri": "mailto:agg@example.com", "max_size": 10 * 1024 * 1024}], run
    assert (rec["p"], rec["sp"], rec["np"], rec["pct"], rec["adkim"], rec["aspf"], rec["fo"]) == (
        "reject", "quarantine", "reject", 100, "r", "r", "1"), run
    # A pass asks for the record only: no existence check, no fallback.
    assert queried(dns) == [("_dmarc.example.com", "TXT")], run
    assert [t["query"] for t in j["trace"]] == ["TXT _dmarc.example.com"], run


def test_dkim_aligned_relaxed_passes(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "alice@example.com", "--spf", "fail", "--spf-domain", "example.net",
                "--dkim-fail", "example.com", "--dkim-pass", "mail.EXAMPLE.com")
    j = run.json
    assert j["result"] == "pass" and j["dkim_aligned"] and not j["spf_aligned"], run
    assert j["domains"][0]["dkim_domain"] == "mail.example.com", run


def test_unaligned_fails_with_p(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "alice@example.com", "--spf", "pass", "--spf-domain", "example.net",
                "--dkim-pass", "example.org")
    j = run.json
    assert (j["result"], j["disposition"], j["policy"], j["policy_tag"]) == ("fail", "reject", "reject", "p"), run
    assert "not aligned" in j["reason"], run


@pytest.mark.parametrize("spf_domain,dkim,want", [
    ("strict.example", None, "pass"),
    ("mail.strict.example", None, "fail"),
    (None, "strict.example", "pass"),
    (None, "mail.strict.example", "fail"),
])
def test_strict_alignment(dmarc_build, dns, spf_domain, dkim, want):
    args = ["--from", "a@Strict.Example"]
    if spf_domain:
        args += ["--spf", "pass", "--spf-domain", spf_domain]
    if dkim:
        args += ["--dkim-pass", dkim]
    run = check(dmarc_build, dns, *args)
    assert run.json["result"] == want, run
    assert run.json["disposition"] == ("reject" if want == "fail" else "none"), run


def test_spf_temperror_aligned_is_temperror(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@example.com", "--spf", "temperror", "--spf-domain", "example.com")
    assert (run.json["result"], run.json["disposition"]) == ("temperror", "none"), run


# --- subdomains: sp, np (RFC 9091), the organizational domain

def test_subdomain_gets_sp_after_org_fallback(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@sub.example.com")
    j = run.json
    assert (j["result"], j["disposition"], j["policy_tag"]) == ("fail", "quarantine", "sp"), run
    assert j["domains"][0]["record_domain"] == "example.com", run
    assert j["domains"][0]["nonexistent"] is False, run
    q = queried(dns)
    assert q[:2] == [("_dmarc.sub.example.com", "TXT"), ("_dmarc.example.com", "TXT")], run
    assert sorted(q[2:]) == [("sub.example.com", "A"), ("sub.example.com", "AAAA"), ("sub.example.com", "MX")], run


@pytest.mark.parametrize("domain,tag,disp", [
    ("nx.example.com", "np", "reject"),          # NXDOMAIN
    ("deep.nx.example.com", "np", "reject"),
    ("txtonly.example.com", "np", "reject"),     # NODATA for A, AAAA and MX
    ("mxonly.example.com", "sp", "quarantine"),  # an MX is enough to exist
])
def test_np_for_nonexistent_subdomains(dmarc_build, dns, domain, tag, disp):
    run = check(dmarc_build, dns, "--from", "x@" + domain)
    j = run.json
    assert (j["result"], j["policy_tag"], j["disposition"]) == ("fail", tag, disp), run
    assert j["domains"][0]["nonexistent"] is (tag == "np"), run


def test_org_domain_under_public_suffix(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@mail.example.co.uk", "--dkim-pass", "other.co.uk")
    j = run.json
    assert j["domains"][0]["org_domain"] == "example.co.uk", run
    # d=other.co.uk is another organization under the same public suffix.
    assert (j["result"], j["disposition"], j["policy_tag"]) == ("fail", "quarantine", "p"), run
    assert queried(dns) == [("_dmarc.mail.example.co.uk", "TXT"), ("_dmarc.example.co.uk", "TXT")], run
    run = check(dmarc_build, dns, "--from", "a@mail.example.co.uk", "--dkim-pass", "other.example.co.uk")
    assert run.json["result"] == "pass", run


def test_internationalized_from_domain(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "J\u00f6rg <j@B\u00fccher.example>", "--dkim-pass",
                "xn--bcher-kva.example")
    assert run.json["header_from"] == "xn--bcher-kva.example", run
    assert run.json["result"] == "pass", run


# --- discovery outcomes

def test_no_record_is_none(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@b.nothing.example", "--spf", "pass", "--spf-domain",
                "nothing.example")
    j = run.json
    assert (j["result"], j["disposition"], j["policy"]) == ("none", "none", None), run
    assert queried(dns) == [("_dmarc.b.nothing.example", "TXT"), ("_dmarc.nothing.example", "TXT")], run


def test_non_dmarc_txt_is_discarded(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@spfonly.example")
    assert run.json["result"] == "none", run


def test_multiple_records_is_none(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@multi.example")
    assert (run.json["result"], run.json["disposition"]) == ("none", "none"), run
    assert "2 DMARC records" in run.json["reason"], run


@pytest.mark.parametrize("domain", ["servfail.example", "timeout.example", "x.servfail.example"])
def test_dns_failure_is_temperror(dmarc_build, dns, domain):
    run = check(dmarc_build, dns, "--from", "a@" + domain)
    assert (run.json["result"], run.json["disposition"]) == ("temperror", "none"), run
    assert "DNS failure" in run.json["reason"], run


def test_invalid_record_is_permerror(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@broken.example")
    assert (run.json["result"], run.json["disposition"]) == ("permerror", "none"), run
    assert "pct=" in run.json["reason"], run


def test_invalid_p_with_rua_is_p_none(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@badp.example")
    j = run.json
    assert (j["result"], j["disposition"], j["policy"]) == ("fail", "none", "none"), run
    assert j["domains"][0]["policy_defaulted"] is True, run


def test_split_txt_strings_and_cname(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@split.example")
    assert (run.json["result"], run.json["disposition"]) == ("fail", "quarantine"), run
    run = check(dmarc_build, dns, "--from", "a@alias.example")
    assert (run.json["result"], run.json["disposition"]) == ("fail", "reject"), run


# --- pct (section 6.6.4)

@pytest.mark.parametrize("sample,disp,sampled_out", [(0, "reject", False), (29, "reject", False),
                                                     (30, "quarantine", True), (99, "quarantine", True)])
def test_pct_sampling(dmarc_build, dns, sample, disp, sampled_out):
    run = check(dmarc_build, dns, "--from", "a@pct.example", "--sample", str(sample))
    j = run.json
    assert (j["result"], j["disposition"], j["sampled_out"], j["sample"]) == ("fail", disp, sampled_out, sample), run


# --- the From fields (section 6.6.1)

def test_several_addresses_strictest_wins(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "Alice <a@example.com>, Bob <b@sub.example.com>", "--dkim-pass",
                "other.example")
    j = run.json
    assert [d["domain"] for d in j["domains"]] == ["example.com", "sub.example.com"], run
    assert [d["disposition"] for d in j["domains"]] == ["reject", "quarantine"], run
    assert (j["result"], j["disposition"], j["header_from"]) == ("fail", "reject", "example.com"), run
    assert j["authentication_results"].count("dmarc=") == 2, run


def test_several_from_fields_each_evaluated(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", "a@example.com", "--from", "b@strict.example", "--spf", "pass",
                "--spf-domain", "example.com")
    j = run.json
    assert j["from_fields"] == 2, run
    assert [d["result"] for d in j["domains"]] == ["pass", "fail"], run
    assert (j["result"], j["disposition"], j["header_from"]) == ("fail", "reject", "strict.example"), run


@pytest.mark.parametrize("froms", [[], ["Alice <alice@example.com"], ["undisclosed-recipients:;"],
                                   ["a@example.com", "(no address)"], ["a@[192.0.2.1]"]])
def test_unusable_from_is_permerror_reject(dmarc_build, dns, froms):
    args = []
    for f in froms:
        args += ["--from", f]
    run = check(dmarc_build, dns, *(args + ["--spf", "pass", "--spf-domain", "example.com"]))
    j = run.json
    assert (j["result"], j["disposition"]) == ("permerror", "reject"), run
    assert j["from_problem"], run
    assert queried(dns) == [], run


def test_display_name_does_not_confuse(dmarc_build, dns):
    run = check(dmarc_build, dns, "--from", '"ceo@example.com" (=?utf-8?q?x?=) <mallory@sub.example.com>')
    assert run.json["header_from"] == "sub.example.com", run


# --- the text output and the command line

def test_text_output(dmarc_build, dns):
    dns.clear_queries()
    run = postern_dmarc(dmarc_build, dns, "--from", "a@sub.example.com", "--sample", "0", json_out=False)
    assert run.status == 0, run
    for line in ("result: fail", "disposition: quarantine", "policy: sp=quarantine",
                 "record at _dmarc.example.com: v=DMARC1;", "alignment: SPF not aligned",
                 "Authentication-Results: dmarc=fail", "TXT   _dmarc.sub.example.com -> nxdomain"):
        assert line in run.stdout, run


@pytest.mark.parametrize("args", [["--spf", "maybe", "--spf-domain", "x.example"], ["--spf", "pass"],
                                  ["--sample", "100"], ["--sample", "x"], ["--bogus"], ["extra"]])
def test_usage_errors(dmarc_build, dns, args):
    run = postern_dmarc(dmarc_build, dns, "--from", "a@example.com", *args)
    assert run.status == 2, run


def test_help(dmarc_build):
    p = subprocess.run([str(ROOT / dmarc_build / "postern"), "dmarc", "check", "--help"], capture_output=True,
                       text=True, env=build_env(dmarc_build), timeout=30)
    assert p.returncode == 0 and "--spf-domain" in p.stdout
    assert sanitizer_report(p.stderr) is None
