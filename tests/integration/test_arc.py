"""
ARC (RFC 8617) against the world, over a real DNS server on loopback:

  - the ARC test suite's validation cases (all 171 of
    ../shared/testdata/arc/arc-draft-validation-tests.yml): `postern arc
    verify --json` over a DNS server holding the suite's key records must
    give the expected chain validation status; where our verdict is not the
    suite's literal expectation, DEVIATIONS says why, and the test asserts
    the documented verdict;
  - the signing cases (all 17 of arc-draft-sign-tests.yml): `postern arc
    sign --standard-format` with the case's t=, key, domain, selector,
    authserv-id and signed fields, validating the incoming chain first over
    the same DNS server, must produce the expected ARC-Seal,
    ARC-Message-Signature and ARC-Authentication-Results, compared without
    white space as the suite's README and harness do; each sealed message
    then validates in postern and in dkimpy;
  - interoperability with dkimpy both ways: chains postern seals validate in
    dkim.arc_verify (its dnsfunc asking the loopback server), chains
    dkim.arc_sign seals validate in postern, and two-hop chains mixing the
    two in either order;
  - oldest-pass after a mailing list changes the body, and the failure
    outcomes over DNS: tampering, a missing key, a DNS timeout, sealing a
    failed chain with cv=fail and refusing to continue it;
  - the CLI's text form and usage errors.

Every test runs on each build (build, build-asan); a sanitizer report in the
CLI's output fails it.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

import dkim  # noqa: E402  (dkimpy)

import pytest  # noqa: E402
import yaml  # noqa: E402

from dnsserver import DnsServer  # noqa: E402
from posterntest import ROOT, build_env, sanitizer_report  # noqa: E402
from dkimtest import dnsfunc_for

SUITE = ROOT.parent / "shared" / "testdata" / "arc"


def _load(name):
    return list(yaml.safe_load_all((SUITE / name).read_text()))


VALIDATION = _load("arc-draft-validation-tests.yml")
SIGNING = _load("arc-draft-sign-tests.yml")
VALIDATION_CASES = [(name, t) for s in VALIDATION for name, t in s["tests"].items()]
SIGNING_CASES = [(name, t, s) for s in SIGNING for name, t in s["tests"].items()]

# Cases where postern's verdict is not the suite's literal expectation, with
# the verdict we give and why. Each is still asserted, as documented.
_TERMINATED = ("fail", "the suite leaves cv empty: its reference validator (dkimpy) returns no status for a "
               "chain whose seal already says cv=fail (\"the chain is terminated\"); RFC 8617 5.2 step 2 "
               "(newest AS cv=fail) and step 3.3 (no AS may say cv=fail) make that chain 'fail', which is "
               "what postern reports and what an Authentication-Results field can carry (arc=fail)")
DEVIATIONS = {
    "cv_fail_i1_as_cv_fail": _TERMINATED,
    "cv_fail_i2_as2_fail": _TERMINATED,
    "cv_fail_i2_as1_fail": _TERMINATED,
}

MESSAGE = (b"Received: from client.example.net by mx.example.org; Mon, 1 Jan 2024 00:00:01 +0000\n"
           b"Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=alice@example.org;\n"
           b"  dkim=none\n"
           b"From: Alice Example <alice@example.org>\n"
           b"To: list@lists.example.net\n"
           b"Subject: ARC interoperability  \t test\n"
           b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
           b"Message-ID: <arc-interop-1@example.org>\n"
           b"MIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=us-ascii\n"
           b"\n"
           b"Hello list,\n"
           b"\n"
           b"  this line has  odd   spacing\t and a trailing tab\t\n"
           b"-- \n"
           b"Alice\n")


def run_postern(build, *args, input=None, timeout=60):
    p = subprocess.run([str(ROOT / build / "postern")] + [str(a) for a in args], input=input,
                       capture_output=True, timeout=timeout, env=build_env(build))
    rep = sanitizer_report(p.stderr.decode("utf-8", "replace"))
    assert rep is None, rep
    return p


def txt_strings(value):
    """A key record as TXT character-strings of at most 255 bytes."""
    value = "".join(value.split("\n"))
    return [value[i:i + 255] for i in range(0, len(value), 255)]


def suite_zones(scenarios):
    zones = {}
    for s in scenarios:
        for name, value in s["txt-records"].items():
            zones[name] = [("TXT", txt_strings(value))]
    return zones


def verify(build, server, message, *extra):
    p = run_postern(build, "arc", "verify", "--resolver", server.address, "--dns-timeout", "1s", "--json",
                    *extra, input=message)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def dkimpy_verify(message, server):
    cv, _, reason = dkim.arc_verify(message, dnsfunc=dnsfunc_for(server))
    return (cv or b"").decode(), reason


def lf(data):
    return data.replace(b"\r\n", b"\n")


def crlf(data):
    return lf(data).replace(b"\n", b"\r\n")


def added_fields(sealed, message):
    """The header fields prepended to message, by lower-case name."""
    assert sealed.endswith(message), sealed[:400]
    out = {}
    for field in re.split(rb"\r?\n(?![ \t])", sealed[:len(sealed) - len(message)]):
        if field:
            name, value = field.split(b":", 1)
            assert name.lower() not in out
            out[name.decode().lower()] = value.decode()
    return out


# ---- the validation suite ---------------------------------------------------

@pytest.fixture(scope="module")
def validation_dns():
    with DnsServer(suite_zones(VALIDATION)) as server:
        yield server


def test_validation_suite_is_complete():
    assert len(VALIDATION_CASES) == 171
    assert len({n for n, _ in VALIDATION_CASES}) == 171
    for name in DEVIATIONS:
        t = dict(VALIDATION_CASES)[name]
        assert not (t["cv"] or "").strip(), name  # only the cases without an expectation
    assert {n for n, t in VALIDATION_CASES if not (t["cv"] or "").strip()} == set(DEVIATIONS)


@pytest.mark.parametrize("name,case", VALIDATION_CASES, ids=[n for n, _ in VALIDATION_CASES])
def test_validation_suite(build, validation_dns, name, case):
    r = verify(build, validation_dns, case["message"].encode())
    want = DEVIATIONS[name][0] if name in DEVIATIONS else case["cv"].strip().lower()
    assert r["cv"] == want, (name, case["description"], r["reason"])
    assert r["reason"]
    if r["cv"] == "pass":
        assert r["reason"] == "ok"
        assert r["sealers"] and len(r["sealers"]) == r["instances"]
        assert all(s["as"] == "pass" for s in r["sets"])
        assert r["sets"][-1]["ams"] == "pass"
    if r["cv"] == "none":
        assert r["instances"] == 0 and r["sealers"] == []


# ---- the signing suite -------------------------------------------------------

@pytest.fixture(scope="module")
def signing_dns():
    with DnsServer(suite_zones(SIGNING)) as server:
        yield server


def test_signing_suite_is_complete():
    assert len(SIGNING_CASES) == 17


@pytest.mark.parametrize("name,case,scenario", SIGNING_CASES, ids=[n for n, _, _ in SIGNING_CASES])
def test_signing_suite(build, signing_dns, tmp_path, name, case, scenario):
    key = tmp_path / "key.pem"
    key.write_text(scenario["privatekey"])
    message = case["message"].encode()
    p = run_postern(build, "arc", "sign", "--standard-format", "--domain", scenario["domain"],
                    "--selector", scenario["sel"], "--key", key, "--authserv-id", case["srv-id"],
                    "--time", case["t"], "--headers", case["sig-headers"],
                    "--resolver", signing_dns.address, "--dns-timeout", "1s", input=message)
    assert p.returncode == 0, p.stderr
    fields = added_fields(p.stdout, message)
    expected = {"arc-seal": case["AS"], "arc-message-signature": case["AMS"],
                "arc-authentication-results": case["AAR"]}
    for field, want in expected.items():
        # The suite's comparison: all white space removed.
        assert "".join(fields.get(field, "").split()) == "".join(want.split()), (name, field)
    if not case["AS"].strip():
        # no_additional_sig: a chain whose newest seal says cv=fail ends.
        assert fields == {} and b"not continued" in p.stderr, p.stderr
        return
    # The standard format, exactly: no folding, one space after each ';'.
    assert re.fullmatch(r" a=rsa-sha256; b=[A-Za-z0-9+/=]+; cv=(none|pass|fail); d=[a-z0-9.]+; i=\d+; "
                        r"s=[a-z0-9]+; t=\d+", fields["arc-seal"]), fields["arc-seal"]
    # What we sealed validates, in postern and in dkimpy (a cv=fail seal
    # ends the chain: fail in postern, "terminated" in dkimpy).
    sealed = p.stdout
    r = verify(build, signing_dns, sealed)
    sealed_cv = re.search(r"cv=(\w+)", fields["arc-seal"]).group(1)
    if sealed_cv == "fail":
        assert r["cv"] == "fail" and "says cv=fail" in r["reason"], r
        assert dkimpy_verify(sealed, signing_dns)[0] == ""
    else:
        instance = int(re.search(r"i=(\d+)", fields["arc-seal"]).group(1))
        assert (r["cv"], r["instances"]) == ("pass", instance), r
        assert dkimpy_verify(sealed, signing_dns) == ("pass", "success")


# ---- interoperability with dkimpy ------------------------------------------------

@pytest.fixture
def keys(build, tmp_path):
    """Sealing keys made by `postern dkim keygen --out`: RSA-2048 for
    example.org (selector arc) and example.net (hop2), Ed25519 for
    example.org (ed); and their zone entries."""
    out = {"zones": {}}
    for domain, sel, alg in (("example.org", "arc", "rsa"), ("example.net", "hop2", "rsa"),
                             ("example.org", "ed", "ed25519")):
        path = tmp_path / (sel + ".key")
        p = run_postern(build, "dkim", "keygen", "--domain", domain, "--selector", sel, "--algorithm", alg,
                        "--out", path)
        assert p.returncode == 0, p.stderr
        line = p.stdout.decode().strip()
        m = re.fullmatch(r'(\S+)\. IN TXT \( ((?:"[^"]*" ?)+)\)', line)
        assert m, line
        out["zones"][m.group(1)] = [("TXT", re.findall(r'"([^"]*)"', m.group(2)))]
        out[sel] = path
    return out


def seal(build, keys, message, sel, domain, authserv_id, *args):
    p = run_postern(build, "arc", "sign", "--domain", domain, "--selector", sel, "--key", keys[sel],
                    "--authserv-id", authserv_id, *args, input=message)
    assert p.returncode == 0, p.stderr
    return p


def dkimpy_seal(message, keyfile, selector, domain, srv_id, headers=(b"from", b"to", b"subject", b"date")):
    fields = dkim.arc_sign(message, selector.encode(), domain.encode(), Path(keyfile).read_bytes(),
                           srv_id.encode(), include_headers=list(headers))
    assert len(fields) == 3, fields
    return b"".join(fields) + message


def test_postern_seals_dkimpy_verifies(build, keys):
    with DnsServer(keys["zones"]) as server:
        for msg in (MESSAGE, crlf(MESSAGE)):
            p = seal(build, keys, msg, "arc", "example.org", "mx.example.org", "--cv", "none")
            sealed = p.stdout
            fields = added_fields(sealed, msg)
            # The AAR took our Authentication-Results.
            assert "".join(fields["arc-authentication-results"].split()) == \
                "i=1;mx.example.org;spf=passsmtp.mailfrom=alice@example.org;dkim=none"
            assert (b"\r\n" in sealed) == (b"\r\n" in msg)
            assert dkimpy_verify(sealed, server) == ("pass", "success")
            r = verify(build, server, sealed)
            assert (r["cv"], r["instances"], r["oldest_pass"], r["sealers"]) == ("pass", 1, 0, ["example.org"]), r
            # Second hop, postern again, validating through the resolver.
            p = seal(build, keys, sealed, "hop2", "example.net", "mx.example.net", "--resolver", server.address,
                     "--results", "arc=pass")
            assert b"arc=pass" in p.stderr
            twice = p.stdout
            assert re.match(rb"ARC-Seal: i=2; a=rsa-sha256; cv=pass; d=example.net;", twice), twice[:100]
            assert dkimpy_verify(twice, server) == ("pass", "success")
            r = verify(build, server, twice)
            assert (r["cv"], r["instances"], r["sealers"]) == ("pass", 2, ["example.org", "example.net"]), r
            assert r["sets"][1]["aar"] == "mx.example.net; arc=pass"
            # dkimpy and postern agree on tampering.
            bad = twice.replace(b"Hello list", b"Hello lust")
            assert dkimpy_verify(bad, server)[0] == "fail"
            r = verify(build, server, bad)
            assert (r["cv"], r["reason"]) == ("fail", "ARC-Message-Signature i=2: body hash mismatch"), r


def test_dkimpy_seals_postern_verifies(build, keys):
    with DnsServer(keys["zones"]) as server:
        for msg in (MESSAGE, crlf(MESSAGE)):
            one = dkimpy_seal(msg, keys["arc"], "arc", "example.org", "mx.example.org")
            r = verify(build, server, one)
            assert (r["cv"], r["instances"], r["sealers"]) == ("pass", 1, ["example.org"]), r
            assert r["sets"][0]["aar"] == "mx.example.org; spf=pass smtp.mailfrom=alice@example.org; dkim=none"
            # dkimpy seals again: its AR stamp says what the chain was.
            two = dkimpy_seal(b"Authentication-Results: mx.example.net; arc=pass\n" + lf(one),
                              keys["hop2"], "hop2", "example.net", "mx.example.net")
            r = verify(build, server, two)
            assert (r["cv"], r["instances"], r["sealers"]) == ("pass", 2, ["example.org", "example.net"]), r
            assert verify(build, server, two.replace(b"odd   spacing", b"odd spacing"))["cv"] == "pass"  # relaxed
            r = verify(build, server, two.replace(b"Subject: ARC", b"Subject: arc"))
            assert (r["cv"], r["reason"]) == ("fail", "ARC-Message-Signature i=2: signature did not verify"), r


def test_two_hops_mixed(build, keys):
    with DnsServer(keys["zones"]) as server:
        # dkimpy, then postern (which validates the dkimpy chain first).
        one = dkimpy_seal(MESSAGE, keys["arc"], "arc", "example.org", "mx.example.org")
        p = seal(build, keys, one, "hop2", "example.net", "mx.example.net", "--resolver", server.address,
                 "--results", "arc=pass header.oldest-pass=0")
        assert b"the chain validates as arc=pass" in p.stderr, p.stderr
        two = p.stdout
        assert dkimpy_verify(two, server) == ("pass", "success")
        r = verify(build, server, two)
        assert (r["cv"], r["instances"], r["sealers"]) == ("pass", 2, ["example.org", "example.net"]), r
        # postern, then dkimpy.
        one = seal(build, keys, MESSAGE, "arc", "example.org", "mx.example.org", "--cv", "none").stdout
        assert verify(build, server, one)["cv"] == "pass"
        two = dkimpy_seal(b"Authentication-Results: mx.example.net; arc=pass\n" + one,
                          keys["hop2"], "hop2", "example.net", "mx.example.net")
        assert dkimpy_verify(two, server) == ("pass", "success")
        r = verify(build, server, two)
        assert (r["cv"], r["instances"], r["sealers"]) == ("pass", 2, ["example.org", "example.net"]), r
        # And a third hop by postern over the mixed chain.
        three = seal(build, keys, two, "arc", "example.org", "mx3.example.org", "--resolver",
                     server.address).stdout
        assert dkimpy_verify(three, server) == ("pass", "success")
        assert verify(build, server, three)["instances"] == 3


def test_ed25519_seals(build, keys):
    """postern validates Ed25519 seals; dkimpy's ARC knows only rsa-sha256
    (so the CLI warns when sealing with Ed25519)."""
    with DnsServer(keys["zones"]) as server:
        p = seal(build, keys, MESSAGE, "ed", "example.org", "mx.example.org", "--cv", "none")
        assert b"warning" in p.stderr and b"rsa-sha256" in p.stderr
        r = verify(build, server, p.stdout)
        assert (r["cv"], r["sets"][0]["seal_selector"]) == ("pass", "ed"), r
        cv, reason = dkimpy_verify(p.stdout, server)
        assert cv == "fail" and "ed25519" in reason, reason
        two = seal(build, keys, p.stdout, "hop2", "example.net", "mx.example.net", "--resolver",
                   server.address).stdout
        assert verify(build, server, two)["cv"] == "pass"


# ---- oldest-pass, failures -------------------------------------------------------

def test_mailing_list_oldest_pass(build, keys):
    """A list validates the chain on arrival, adds a footer, and seals:
    the chain still passes, and oldest-pass says where the body changed."""
    with DnsServer(keys["zones"]) as server:
        one = seal(build, keys, MESSAGE, "arc", "example.org", "mx.example.org", "--cv", "none").stdout
        assert verify(build, server, one)["cv"] == "pass"
        listed = one + b"--\nlists.example.net: unsubscribe at https://lists.example.net/\n"
        two = seal(build, keys, listed, "hop2", "example.net", "lists.example.net", "--cv", "pass",
                   "--results", "arc=pass").stdout
        r = verify(build, server, two)
        assert (r["cv"], r["oldest_pass"]) == ("pass", 2), r
        assert [(s["ams"], s["as"]) for s in r["sets"]] == [("fail", "pass"), ("pass", "pass")], r
        assert dkimpy_verify(two, server) == ("pass", "success")
        p = run_postern(build, "arc", "verify", "--resolver", server.address, input=two)
        assert p.stdout.decode() == "arc=pass instances=2 oldest-pass=2 sealers=example.org,example.net (ok)\n"


def test_failures_over_dns(build, keys):
    zones = dict(keys["zones"])
    slow = {"arc._domainkey.example.org": ["TIMEOUT"]}
    with DnsServer(zones) as server:
        one = seal(build, keys, MESSAGE, "arc", "example.org", "mx.example.org", "--cv", "none").stdout
        # A missing key (hop2 seals, its key is not published).
        server.set_zones({k: v for k, v in zones.items() if not k.startswith("hop2.")})
        two = seal(build, keys, one, "hop2", "example.net", "mx.example.net", "--cv", "pass").stdout
        r = verify(build, server, two)
        assert (r["cv"], r["temperror"]) == ("fail", False), r
        assert r["reason"] == "ARC-Message-Signature i=2: no key at hop2._domainkey.example.net", r
        # A DNS timeout: fail (RFC 8617 5.2.1), marked temporary.
        server.set_zones(slow)
        r = verify(build, server, one)
        assert (r["cv"], r["temperror"]) == ("fail", True), r
        assert "DNS failure" in r["reason"]
        server.set_zones(zones)
        # Sealing a failed chain: cv=fail over our own set, then no more.
        bad = two.replace(b"Hello list", b"Hello lust")
        p = seal(build, keys, bad, "arc", "example.org", "mx3.example.org", "--resolver", server.address)
        assert b"arc=fail" in p.stderr
        three = p.stdout
        assert re.match(rb"ARC-Seal: i=3; a=rsa-sha256; cv=fail;", three), three[:80]
        r = verify(build, server, three)
        assert (r["cv"], r["reason"]) == ("fail", "ARC-Seal i=3 says cv=fail: the chain failed before"), r
        p = seal(build, keys, three, "arc", "example.org", "mx4.example.org", "--cv", "fail")
        assert p.stdout == three and b"not continued" in p.stderr


def test_cli(build, keys, tmp_path):
    with DnsServer(keys["zones"]) as server:
        path = tmp_path / "m.eml"
        path.write_bytes(MESSAGE)
        p = run_postern(build, "arc", "verify", "--resolver", server.address, path)
        assert (p.returncode, p.stdout) == (0, b"arc=none instances=0 (no ARC header fields)\n")
        sealed = seal(build, keys, path.read_bytes(), "arc", "example.org", "mx.example.org", "--cv", "none",
                      "--headers", "From:To:Subject", "--time", "1700000000").stdout
        assert b"t=1700000000;" in sealed and b"h=from:to:subject;" in sealed
        path.write_bytes(sealed)
        p = run_postern(build, "arc", "verify", "--resolver", server.address, path)
        assert p.stdout == b"arc=pass instances=1 oldest-pass=0 sealers=example.org (ok)\n"
    base = ["arc", "sign", "--domain", "example.org", "--selector", "arc", "--key", keys["arc"]]
    for args in ([], ["frobnicate"], ["verify", "a", "b"], base, base + ["--authserv-id", "x", "--cv", "maybe"],
                 base + ["--authserv-id", "x", "--cv", "none", "--resolver", "127.0.0.1"],
                 base + ["--authserv-id", "x", "--cv", "none", "--headers", "from:arc-seal"],
                 ["arc", "verify", "--time", "soon"]):
        p = run_postern(build, *(args or ["arc"]), input=MESSAGE)
        assert p.returncode == 2, (args, p.stderr)
    p = run_postern(build, "arc", "sign", "--domain", "example.org", "--selector", "arc", "--key",
                    tmp_path / "missing.key", "--authserv-id", "x", "--cv", "none", input=MESSAGE)
    assert p.returncode == 1 and b"cannot open" in p.stderr
    p = run_postern(build, *base, "--authserv-id", "x", "--cv", "pass", input=MESSAGE)
    assert p.returncode == 1 and b"cv must be none" in p.stderr
    p = run_postern(build, "arc", "--help")
    assert b"postern arc verify" in p.stdout + p.stderr
