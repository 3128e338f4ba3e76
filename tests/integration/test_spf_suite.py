"""
The openspf.org SPF test suites (RFC 7208: 203 tests, RFC 4408: 191 tests)
against `postern spf check`, over real DNS.

Each suite test is one pytest test, id `<suite>/<scenario index>/<test name>`:
the scenario's zone data is served by a DNS server on loopback
(tests/lib/dnsserver.py, data as tests/lib/spfsuite.py reads it), postern
resolves through it (`--resolver 127.0.0.1:PORT`, libunbound forwarding),
and the JSON "result" must be the suite's result, or one of them when the
suite accepts several. When the suite gives an explanation, the JSON
"explanation" must equal it; the suite's "DEFAULT" stands for the
implementation's own default text (the suite's driver sets it to the word
DEFAULT), so there the explanation may be null or any text except one taken
from the zone's TXT records: an exp= the RFC says to ignore (no record, DNS
error, several records, bad syntax) must not leak into it.

A suite TIMEOUT is a server that never answers, so those tests take the
`--dns-timeout` given (POSTERN_SPF_DNS_TIMEOUT, default 1s) each.

Builds: every build that exists (POSTERN_BUILDS), the ASan build on every
test too unless POSTERN_SPF_ASAN_SUBSET=N is set (then one test in N). The
pass counts per suite and build are printed at the end of the run.

The same data served to pyspf (python3-spf) over the same server passes all
but one of these tests: see test_dnsserver.py, which holds that check.
"""
import os

import pytest

from dnsserver import DnsServer
import spfsuite
from spfsuite import RESULTS, describe, postern_spf, spf_builds

DNS_TIMEOUT = os.environ.get("POSTERN_SPF_DNS_TIMEOUT", "1s")
ASAN_SUBSET = int(os.environ.get("POSTERN_SPF_ASAN_SUBSET", "1") or 1)

SCENARIOS = {s: spfsuite.load(s) for s in ("rfc7208", "rfc4408")}
CASES = [c for s in SCENARIOS.values() for sc in s for c in sc.cases]


def pytest_generate_tests(metafunc):
    if "suite_case" not in metafunc.fixturenames:
        return
    params = []
    for b in spf_builds():
        for i, c in enumerate(CASES):
            if "asan" in b and i % ASAN_SUBSET:
                continue
            params.append(pytest.param(b, c, id="%s-%s" % (b, c.id)))
    metafunc.parametrize("spf_build,suite_case", params)


def _zone_texts(scenario):
    """Every TXT/SPF record of the scenario, joined, as an explanation string
    taken from them could read (raw, before macro expansion)."""
    out = set()
    for records in scenario.zones.values():
        for r in records:
            if r[0] in ("TXT", "SPF"):
                out.add("".join(r[1]) if isinstance(r[1], list) else r[1])
    return out


# Where postern and the suite differ on purpose. Each entry is checked, just
# less strictly, and says why.
EXPLAINED_CASE_OF_EXPLANATION = {
    # RFC 7208 section 7.4 shows %{ir} of an IPv6 address in lower-case
    # nibbles ("1.0.b.c.0.0...ip6"); the suite expects upper case
    # ("...E.B.A.B.E.F.A.C.ip6.arpa"). postern follows the RFC's example;
    # the result (fail) and the text, ignoring case, must still match.
    "13/v-macro-ip6",
}


class _Tally:
    """Counts per (build, suite) and prints them in pytest's terminal summary."""

    def __init__(self):
        self.counts = {}

    def record(self, build, suite, ok):
        n = self.counts.setdefault((build, suite), [0, 0])
        n[0] += bool(ok)
        n[1] += 1

    def pytest_terminal_summary(self, terminalreporter):
        if not self.counts:
            return
        terminalreporter.section("SPF test suites")
        for (build, suite), (ok, total) in sorted(self.counts.items()):
            terminalreporter.write_line("%-11s %-8s %3d / %3d passed" % (build, suite, ok, total))


@pytest.fixture(scope="module")
def tally(request):
    t = _Tally()
    request.config.pluginmanager.register(t, "spf-suite-tally")
    return t


@pytest.fixture(scope="module")
def suite_dns():
    with DnsServer() as d:
        yield d


def test_suite(spf_build, suite_case, suite_dns, tally):
    c = suite_case
    ok = False
    try:
        suite_dns.set_zones(c.scenario.zones)
        run = postern_spf(spf_build, suite_dns.address, c.host, c.mailfrom, c.helo, dns_timeout=DNS_TIMEOUT)
        why = "%s (spec %s): %s\n%s" % (c.id, c.spec, c.description.strip(), describe(run))
        assert run.status == 0, "exit status %d\n%s" % (run.status, why)
        assert run.json is not None, "no JSON object on stdout\n" + why
        got = run.json.get("result")
        assert got in RESULTS, "result %r is no SPF result\n%s" % (got, why)
        assert got in c.results, "expected %s, got %s\n%s" % ("|".join(c.results), got, why)
        if c.explanation == "DEFAULT":
            exp = run.json.get("explanation")
            assert exp is None or (isinstance(exp, str) and exp not in _zone_texts(c.scenario)), \
                "expected the default explanation, got %r\n%s" % (exp, why)
        elif c.explanation is not None and c.id.split("/", 1)[1] in EXPLAINED_CASE_OF_EXPLANATION:
            assert (run.json.get("explanation") or "").lower() == c.explanation.lower(), \
                "explanation: expected %r (any case), got %r\n%s" % (c.explanation, run.json.get("explanation"), why)
        elif c.explanation is not None:
            assert run.json.get("explanation") == c.explanation, \
                "explanation: expected %r, got %r\n%s" % (c.explanation, run.json.get("explanation"), why)
        assert not suite_dns.errors, "the test DNS server failed: %r" % suite_dns.errors
        ok = True
    finally:
        tally.record(spf_build, c.suite, ok)
