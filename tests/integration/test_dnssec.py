"""
DNSSEC validation as a user of `postern dns query` sees it, against a real
authoritative server: NSD on loopback (tests/lib/nsdserver.py), serving
zones signed at test time with ldns-keygen and ldns-signzone, with postern's
libunbound forwarding to it.

  signed.example    signed (KSK + ZSK, ECDSA P-256, NSEC); A, AAAA, MX, TXT
                    and a TLSA record for _25._tcp.mx.signed.example.
  bogus.example     the same, signed, then the A of www changed after
                    signing, so that answer fails validation while the rest
                    of the zone still validates.
  unsigned.example  the same records, not signed.

One anchor file holds the DS of signed.example and the DNSKEY of
bogus.example (both formats ub_ctx_add_ta_file reads); nothing anchors the
root or unsigned.example, which is therefore insecure, not bogus.

The zones are under .example and not .test: libunbound answers every name
under test. (and onion., invalid., home.arpa.) from its built-in local zones
with NXDOMAIN, without asking the forwarder, so a .test zone can never be
reached through postern's resolver.

Every test runs on each build (build, build-asan); an ASan/UBSan report on
the CLI's stderr fails it.
"""
import json
import shutil
import subprocess

import pytest

from nsdserver import NsdServer, change_record, make_keys, sign_zone
from posterntest import ROOT, build_env, make_workdir, sanitizer_report

TLSA_HEX = "8cb0fc6c527506a053f4f14c8464bebbd6dede2738d11468dd953d7d6a3021f1"

ZONE = """$ORIGIN {origin}.
$TTL 300
@                IN SOA  ns1 hostmaster 1 3600 600 86400 60
@                IN NS   ns1
@                IN MX   10 mx
@                IN TXT  "v=spf1 mx -all"
ns1              IN A    127.0.0.1
www              IN A    192.0.2.10
www              IN AAAA 2001:db8::10
mx               IN A    192.0.2.25
_25._tcp.mx      IN TLSA 3 1 1 {tlsa}
"""


class Zones:
    """The running NSD and the anchor file."""

    def __init__(self, nsd, anchor):
        self.nsd = nsd
        self.resolver = "127.0.0.1:%d" % nsd.port
        self.anchor = anchor


@pytest.fixture(scope="module")
def zones():
    d = make_workdir("postern-dnssec-")
    try:
        files, anchors = {}, []
        for origin in ("signed.example", "bogus.example"):
            keys = make_keys(d, origin)
            files[origin] = sign_zone(d, origin, ZONE.format(origin=origin, tlsa=TLSA_HEX), keys)
            anchors.append(keys.ds if origin == "signed.example" else keys.dnskey)
        bogus = files["bogus.example"]
        bogus.write_text(change_record(bogus.read_text(), "www.bogus.example", "A", "192.0.2.10", "192.0.2.66"))
        files["unsigned.example"] = d / "unsigned.example.zone"
        files["unsigned.example"].write_text(ZONE.format(origin="unsigned.example", tlsa=TLSA_HEX))
        anchor = d / "anchors.zone"
        anchor.write_text("\n".join(anchors) + "\n")
        with NsdServer(d, files) as nsd:
            yield Zones(nsd, anchor)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def query(build, zones, name, rtype=None, anchor=True):
    """`postern dns query NAME [TYPE] --json` through NSD; the parsed JSON."""
    argv = [str(ROOT / build / "postern"), "dns", "query", name] + ([rtype] if rtype else [])
    argv += ["--resolver", zones.resolver, "--dns-timeout", "2s", "--json"]
    if anchor:
        argv += ["--trust-anchor", str(zones.anchor)]
    p = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=30, env=build_env(build))
    rep = sanitizer_report(p.stderr)
    assert rep is None, "sanitizer report from %s:\n%s" % (" ".join(argv), rep)
    assert p.returncode == 0, "%s: rc=%d\n%s%s" % (" ".join(argv), p.returncode, p.stdout, p.stderr[-2000:])
    try:
        return json.loads(p.stdout)
    except ValueError:
        raise AssertionError("%s: not JSON:\n%s%s" % (" ".join(argv), p.stdout, p.stderr[-2000:]))


RECORDS = [
    ("www.signed.example", "A", ["192.0.2.10"]),
    ("www.signed.example", "AAAA", ["2001:db8::10"]),
    ("signed.example", "MX", ["10 mx.signed.example"]),
    ("signed.example", "TXT", ["v=spf1 mx -all"]),
    ("_25._tcp.mx.signed.example", "TLSA", ["3 1 1 " + TLSA_HEX]),
]


@pytest.mark.parametrize("name,rtype,answers", RECORDS, ids=[r[1] for r in RECORDS])
def test_signed_answer_with_anchor_is_secure(build, zones, name, rtype, answers):
    r = query(build, zones, name, rtype)
    assert (r["status"], r["secure"], r["why"]) == ("answer", True, None), r
    assert r["answers"] == answers, r
    assert r["canonical"] == name and r["ttl"] == 300, r


@pytest.mark.parametrize("name,rtype,answers", RECORDS, ids=[r[1] for r in RECORDS])
def test_signed_answer_without_anchor_is_insecure(build, zones, name, rtype, answers):
    r = query(build, zones, name, rtype, anchor=False)
    assert (r["status"], r["secure"], r["why"]) == ("answer", False, None), r
    assert r["answers"] == answers, r


def test_bogus_answer_with_anchor_is_tempfail(build, zones):
    r = query(build, zones, "www.bogus.example", "A")
    assert (r["status"], r["secure"]) == ("tempfail", False), r
    assert "bogus" in (r["why"] or ""), r
    assert r["answers"] == [], r


def test_bogus_zone_rest_still_validates(build, zones):
    # Only the altered RRset fails: the anchor and the zone's keys are good.
    r = query(build, zones, "mx.bogus.example", "A")
    assert (r["status"], r["secure"], r["answers"]) == ("answer", True, ["192.0.2.25"]), r


def test_bogus_answer_without_anchor_is_insecure(build, zones):
    r = query(build, zones, "www.bogus.example", "A", anchor=False)
    assert (r["status"], r["secure"], r["why"]) == ("answer", False, None), r
    assert r["answers"] == ["192.0.2.66"], r


@pytest.mark.parametrize("name,rtype,status,answers", [
    ("www.unsigned.example", "A", "answer", ["192.0.2.10"]),
    ("_25._tcp.mx.unsigned.example", "TLSA", "answer", ["3 1 1 " + TLSA_HEX]),
    ("nope.unsigned.example", "A", "nxdomain", []),
    ("www.unsigned.example", "MX", "nodata", []),
], ids=["A", "TLSA", "nxdomain", "nodata"])
def test_unsigned_zone_outside_anchors_is_insecure(build, zones, name, rtype, status, answers):
    r = query(build, zones, name, rtype)
    assert (r["status"], r["secure"], r["why"]) == (status, False, None), r
    assert r["answers"] == answers, r


@pytest.mark.parametrize("name,rtype,status", [
    ("nope.signed.example", "A", "nxdomain"),
    ("_25._tcp.www.signed.example", "TLSA", "nxdomain"),
    ("www.signed.example", "MX", "nodata"),
    ("mx.signed.example", "TLSA", "nodata"),
], ids=["nxdomain", "nxdomain-tlsa", "nodata", "nodata-tlsa"])
def test_signed_denial_with_anchor_is_secure(build, zones, name, rtype, status):
    # NSEC-authenticated denial: a DANE client may treat it as proven absence.
    r = query(build, zones, name, rtype)
    assert (r["status"], r["secure"], r["why"]) == (status, True, None), r
    assert r["answers"] == [] and r["negative_ttl"] == 60, r


@pytest.mark.parametrize("name,rtype,status", [
    ("nope.signed.example", "A", "nxdomain"),
    ("www.signed.example", "MX", "nodata"),
], ids=["nxdomain", "nodata"])
def test_signed_denial_without_anchor_is_insecure(build, zones, name, rtype, status):
    r = query(build, zones, name, rtype, anchor=False)
    assert (r["status"], r["secure"]) == (status, False), r
