"""
DKIM against the world, over a real DNS server on loopback:

  - RFC 8463 appendix A (both signatures) verifies with `postern dkim verify`
    over the zone in ../shared/testdata/dkim/rfc8463/dns.json;
  - `postern dkim keygen`: the key file (place, mode, owner) and the record;
  - messages postern signs (RSA, Ed25519, both) verify with dkimpy (its
    dnsfunc asking the loopback server) and with OpenDKIM
    (`opendkim-testmsg`, which uses the system resolver: it runs in a
    private network and mount namespace where /etc/resolv.conf points to a
    DNS server on that namespace's own 127.0.0.1:53, so nothing leaves
    loopback);
  - messages dkimpy and OpenDKIM sign verify in postern. opendkim-testmsg
    only signs rsa-sha1 (postern must say policy, RFC 8301), so rsa-sha256
    and ed25519-sha256 signatures are made by libopendkim itself through
    ctypes (dkim_sign, dkim_chunk, dkim_eom, dkim_getsighdr_d);
  - the failure outcomes over DNS: missing key, DNS timeout, revoked key,
    tampering, no signature.

Every test runs on each build (build, build-asan); a sanitizer report in the
CLI's output fails it. This file also runs as a script inside the namespace
(see _netns_main).
"""
import base64
import ctypes
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))


def _netns_main(argv):
    """Inside `unshare -n -m`: loopback up, /etc/resolv.conf -> 127.0.0.1,
    a DNS server on 127.0.0.1:53 serving the zones in argv[0] (JSON), then
    runs argv[1:] with our stdin; exits with its status."""
    from dnsserver import DnsServer
    zones = {k: [tuple(e) for e in v] for k, v in json.loads(Path(argv[0]).read_text()).items()}
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".resolv.conf", delete=False) as f:
        f.write("nameserver 127.0.0.1\noptions attempts:2 timeout:2\n")
    subprocess.run(["mount", "--bind", f.name, "/etc/resolv.conf"], check=True)
    with DnsServer(zones, host="127.0.0.1", port=53):
        p = subprocess.run(argv[1:], stdin=sys.stdin, capture_output=True)
    os.unlink(f.name)
    sys.stdout.buffer.write(p.stdout)
    sys.stderr.buffer.write(p.stderr)
    return p.returncode


if __name__ == "__main__":
    sys.exit(_netns_main(sys.argv[1:]))

import dkim  # noqa: E402  (dkimpy)
import pytest  # noqa: E402

from dnsserver import DnsServer  # noqa: E402
from posterntest import ROOT, Postern, build_env, sanitizer_report  # noqa: E402
from dkimtest import record_strings, dnsfunc_for

RFC8463 = ROOT.parent / "shared" / "testdata" / "dkim" / "rfc8463"

MESSAGE = (b"Received: from client.example.net by mx.example.org; Mon, 1 Jan 2024 00:00:01 +0000\n"
           b"From: Alice Example <alice@example.org>\n"
           b"To: Bob <bob@example.net>, carol@example.net\n"
           b"Cc: dave@example.net\n"
           b"Subject: DKIM interoperability  \t test\n"
           b"Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
           b"Message-ID: <interop-1@example.org>\n"
           b"MIME-Version: 1.0\n"
           b"Content-Type: text/plain; charset=us-ascii\n"
           b"List-Id: Example list <list.example.org>\n"
           b"\n"
           b"Hello Bob,\n"
           b"\n"
           b"  this line has  odd   spacing\t and a trailing tab\t\n"
           b"and this one is long: " + b"0123456789" * 30 + b"\n"
           b"\n"
           b"-- \n"
           b"Alice\n"
           b"\n\n")


def run_postern(build, *args, input=None, timeout=60):
    p = subprocess.run([str(ROOT / build / "postern")] + [str(a) for a in args], input=input,
                       capture_output=True, timeout=timeout, env=build_env(build))
    rep = sanitizer_report(p.stderr.decode("utf-8", "replace"))
    assert rep is None, rep
    return p


def lf(data):
    return data.replace(b"\r\n", b"\n")


def crlf(data):
    return lf(data).replace(b"\n", b"\r\n")


@pytest.fixture
def keys(build, tmp_path):
    """An RSA-2048 and an Ed25519 key for example.org (selectors rsa, ed),
    made by `postern dkim keygen --out`, and their zone entries."""
    out = {"zones": {}}
    for sel, alg in (("rsa", "rsa"), ("ed", "ed25519")):
        path = tmp_path / (sel + ".key")
        p = run_postern(build, "dkim", "keygen", "--domain", "example.org", "--selector", sel,
                        "--algorithm", alg, "--out", path)
        assert p.returncode == 0, p.stderr
        assert (path.stat().st_mode & 0o777) == 0o600
        name, strings = record_strings(p.stdout)
        assert name == "%s._domainkey.example.org" % sel
        out[sel] = path
        out["zones"][name] = [("TXT", strings)]
        out[sel + "_record"] = "".join(strings)
    return out


def sign(build, keys, message, selectors=("rsa", "ed")):
    args = ["dkim", "sign", "--domain", "example.org"]
    for s in selectors:
        args += ["--selector", s, "--key", keys[s]]
    p = run_postern(build, *args, input=message)
    assert p.returncode == 0, p.stderr
    return p.stdout


def verify(build, dnsserver, message, *extra):
    p = run_postern(build, "dkim", "verify", "--resolver", dnsserver.address, "--dns-timeout", "1s", "--json",
                    *extra, input=message)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["signatures"]


def dkimpy_ok(message, idx, dnsfunc):
    """dkimpy's verdict on signature idx (it raises for some failures)."""
    try:
        return dkim.DKIM(message).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.DKIMException:
        return False


def netns_run(zones, argv, stdin_bytes, tmp_path):
    """Runs argv in a private network and mount namespace with a DNS server
    for zones on its 127.0.0.1:53 and /etc/resolv.conf pointing there."""
    zf = tmp_path / "zones.json"
    zf.write_text(json.dumps({k: [list(e) for e in v] for k, v in zones.items()}))
    return subprocess.run(["unshare", "-n", "-m", "--", sys.executable, str(Path(__file__).resolve()), str(zf)]
                          + list(argv), input=stdin_bytes, capture_output=True, timeout=60)


class OpenDKIMSigner:
    """libopendkim's signer through ctypes (opendkim-testmsg only does
    rsa-sha1)."""
    CANON = {"simple": 0, "relaxed": 1}
    ALG = {"rsa-sha1": 0, "rsa-sha256": 1, "ed25519-sha256": 2}

    def __init__(self):
        lib = ctypes.CDLL("libopendkim.so.11")
        vp, cp = ctypes.c_void_p, ctypes.c_char_p
        lib.dkim_init.restype = vp
        lib.dkim_init.argtypes = [vp, vp]
        lib.dkim_sign.restype = vp
        lib.dkim_sign.argtypes = [vp, cp, vp, cp, cp, cp, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_ssize_t, ctypes.POINTER(ctypes.c_int)]
        lib.dkim_chunk.argtypes = [vp, cp, ctypes.c_size_t]
        lib.dkim_eom.argtypes = [vp, vp]
        lib.dkim_getsighdr_d.argtypes = [vp, ctypes.c_size_t, ctypes.POINTER(cp), ctypes.POINTER(ctypes.c_size_t)]
        lib.dkim_geterror.restype = cp
        lib.dkim_geterror.argtypes = [vp]
        lib.dkim_free.argtypes = [vp]
        lib.dkim_close.argtypes = [vp]
        self.lib = lib

    def sign(self, message, domain, selector, keyfile, alg, hcanon, bcanon):
        lib = self.lib
        msg = crlf(message)
        h = lib.dkim_init(None, None)
        st = ctypes.c_int(0)
        d = lib.dkim_sign(h, b"postern-test", None, Path(keyfile).read_bytes(), selector.encode(),
                          domain.encode(), self.CANON[hcanon], self.CANON[bcanon], self.ALG[alg], -1,
                          ctypes.byref(st))
        assert d and st.value == 0, "dkim_sign: status %d" % st.value
        try:
            for chunk in (msg, None):
                rc = lib.dkim_chunk(d, chunk, len(chunk) if chunk else 0)
                assert rc == 0, lib.dkim_geterror(d)
            rc = lib.dkim_eom(d, None)
            assert rc == 0, lib.dkim_geterror(d)
            buf, n = ctypes.c_char_p(), ctypes.c_size_t()
            assert lib.dkim_getsighdr_d(d, 16, ctypes.byref(buf), ctypes.byref(n)) == 0
            return b"DKIM-Signature: " + ctypes.string_at(buf, n.value) + b"\r\n" + msg
        finally:
            lib.dkim_free(d)
            lib.dkim_close(h)


# ---- RFC 8463 -------------------------------------------------------------------

def rfc8463_zones():
    data = json.loads((RFC8463 / "dns.json").read_text())
    return {name: [(t, strings) for t, recs in types.items() for strings in recs] for name, types in data.items()}


def test_rfc8463_example_verifies(build):
    with DnsServer(rfc8463_zones()) as server:
        eml = RFC8463 / "rfc8463-A3-signed.eml"
        p = run_postern(build, "dkim", "verify", "--resolver", server.address, "--json", eml)
        assert p.returncode == 0, p.stderr
        sigs = json.loads(p.stdout)["signatures"]
        assert [(s["result"], s["algorithm"], s["selector"], s["b"]) for s in sigs] == [
            ("pass", "ed25519-sha256", "brisbane", "/gCrinpc"),
            ("pass", "rsa-sha256", "test", "F45dVWDf")], sigs
        assert all(s["domain"] == "football.example.com" and s["identity"] == "@football.example.com"
                   for s in sigs)
        # The text form, from standard input with LF line endings.
        p = run_postern(build, "dkim", "verify", "--resolver", server.address, input=lf(eml.read_bytes()))
        lines = p.stdout.decode().splitlines()
        assert lines == [
            "dkim=pass header.d=football.example.com header.s=brisbane header.a=ed25519-sha256 "
            "header.i=@football.example.com header.b=/gCrinpc (ok)",
            "dkim=pass header.d=football.example.com header.s=test header.a=rsa-sha256 "
            "header.i=@football.example.com header.b=F45dVWDf (ok)"], lines
        assert server.count("brisbane._domainkey.football.example.com", "TXT") >= 1


# ---- keygen ---------------------------------------------------------------------

def test_keygen_default_path_owner_and_record(build, workdir):
    pt = Postern(build, workdir)
    p = pt.cli("dkim", "keygen", "--domain", "Example.ORG", "--selector", "s2024")
    assert p.returncode == 0, p.stderr
    key = pt.data_dir / "dkim" / "example.org" / "s2024.key"
    st = key.stat()
    assert (st.st_mode & 0o777) == 0o600
    assert (st.st_uid, st.st_gid) == (pt.uid, pt.gid)
    for d in (key.parent, key.parent.parent):
        assert (d.stat().st_uid, d.stat().st_gid) == (pt.uid, pt.gid)
        assert (d.stat().st_mode & 0o007) == 0
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert str(key) in p.stderr
    name, strings = record_strings(p.stdout.encode())
    assert name == "s2024._domainkey.example.org"
    record = "".join(strings)
    assert record.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # RSA 2048 by default
    assert len(strings) == 2 and len(strings[0]) == 255
    # The record is the key's public half.
    pub = subprocess.run(["openssl", "pkey", "-in", str(key), "-pubout", "-outform", "DER"],
                         capture_output=True, check=True).stdout
    assert record.split("p=")[1] == base64.b64encode(pub).decode()
    # An existing key is never replaced.
    before = key.read_bytes()
    p = pt.cli("dkim", "keygen", "--domain", "example.org", "--selector", "s2024", "--algorithm", "ed25519")
    assert p.returncode == 1 and "never replaced" in p.stderr, p.stderr
    assert key.read_bytes() == before
    p = pt.cli("dkim", "keygen", "--domain", "example.org", "--selector", "ed", "--algorithm", "ed25519")
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r'ed\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=" \)\n',
                        p.stdout), p.stdout
    # Usage errors.
    for args in (["--selector", "x"], ["--domain", "../etc", "--selector", "x"],
                 ["--domain", "example.org", "--selector", "a/b"],
                 ["--domain", "example.org", "--selector", "x", "--algorithm", "dsa"]):
        assert pt.cli("dkim", "keygen", *args).returncode == 2, args
    assert pt.cli("dkim", "keygen", "--domain", "example.org", "--selector", "x", "--bits", "512").returncode == 1


# ---- postern signs, postern verifies ------------------------------------------------

def test_sign_and_verify(build, keys):
    with DnsServer(keys["zones"]) as server:
        signed = sign(build, keys, MESSAGE)
        assert signed.endswith(MESSAGE) and b"\r" not in signed
        sigs = verify(build, server, signed)
        assert [(s["result"], s["algorithm"], s["selector"]) for s in sigs] == [
            ("pass", "rsa-sha256", "rsa"), ("pass", "ed25519-sha256", "ed")], sigs
        assert sigs[0]["key_bits"] == 2048 and sigs[1]["key_bits"] == 256
        # h= lists the usual fields, From once more than present.
        h = re.search(rb"h=([^;]*);", signed).group(1).replace(b"\n\t", b"").decode()
        assert h == "from:to:cc:subject:date:message-id:mime-version:content-type:list-id:from", h
        # CRLF in, CRLF out; it verifies in either form.
        signed_crlf = sign(build, keys, crlf(MESSAGE))
        assert signed_crlf.endswith(crlf(MESSAGE)) and b"\n\t" not in signed_crlf.replace(b"\r\n\t", b"")
        assert [s["result"] for s in verify(build, server, signed_crlf)] == ["pass", "pass"]
        assert [s["result"] for s in verify(build, server, lf(signed_crlf))] == ["pass", "pass"]
        # Tampering.
        bad = signed.replace(b"Hello Bob", b"Hello Rob")
        assert [(s["result"], s["reason"]) for s in verify(build, server, bad)] == [
            ("fail", "body hash mismatch")] * 2
        bad = signed.replace(b"Subject: DKIM", b"Subject: dKIM")
        assert [s["result"] for s in verify(build, server, bad)] == ["fail", "fail"]
        bad = signed.replace(b"To: Bob", b"From: Mallory <m@example.org>\nTo: Bob")
        assert [s["result"] for s in verify(build, server, bad)] == ["fail", "fail"]


def test_sign_large_message_streams(build, keys, tmp_path):
    """A 3 MiB body, signed from a file and verified from a file."""
    body = b"".join(b"line %d of a large message with  some   spaces \n" % i for i in range(60000))
    msg = tmp_path / "big.eml"
    msg.write_bytes(MESSAGE.split(b"\n\n", 1)[0] + b"\n\n" + body)
    p = run_postern(build, "dkim", "sign", "--domain", "example.org", "--selector", "ed", "--key", keys["ed"], msg)
    assert p.returncode == 0, p.stderr
    signed = tmp_path / "big-signed.eml"
    signed.write_bytes(p.stdout)
    with DnsServer(keys["zones"]) as server:
        p = run_postern(build, "dkim", "verify", "--resolver", server.address, "--json", signed)
        assert [s["result"] for s in json.loads(p.stdout)["signatures"]] == ["pass"]


def test_sign_errors(build, keys, tmp_path):
    p = run_postern(build, "dkim", "sign", "--domain", "example.org", "--selector", "rsa", "--key", keys["rsa"],
                    input=b"To: x@example.net\n\nno From\n")
    assert p.returncode == 1 and b"no From" in p.stderr, p.stderr
    p = run_postern(build, "dkim", "sign", "--domain", "example.org", "--selector", "rsa", "--key",
                    tmp_path / "missing.key", input=MESSAGE)
    assert p.returncode == 1 and b"missing.key" in p.stderr
    p = run_postern(build, "dkim", "sign", "--domain", "example.org", "--selector", "rsa", input=MESSAGE)
    assert p.returncode == 2
    assert run_postern(build, "dkim", "frobnicate").returncode == 2
    p = run_postern(build, "dkim", "verify", "--resolver", "127.0.0.1:9", tmp_path / "missing.eml")
    assert p.returncode == 1


# ---- postern signs, others verify ---------------------------------------------------

def test_postern_signatures_verify_with_dkimpy(build, keys):
    with DnsServer(keys["zones"]) as server:
        dnsfunc = dnsfunc_for(server)
        for message in (MESSAGE, crlf(MESSAGE), b"From: a@example.org\n\n"):
            signed = crlf(sign(build, keys, message))
            assert dkimpy_ok(signed, 0, dnsfunc), "rsa"
            assert dkimpy_ok(signed, 1, dnsfunc), "ed25519"
            bad = signed.replace(b"From: a", b"From: b").replace(b"Hello", b"Hullo")
            assert not dkimpy_ok(bad, 0, dnsfunc) and not dkimpy_ok(bad, 1, dnsfunc)
        assert server.count("rsa._domainkey.example.org", "TXT") >= 1


@pytest.mark.parametrize("selectors", [("rsa",), ("ed",), ("rsa", "ed")], ids=["rsa", "ed25519", "dual"])
def test_postern_signatures_verify_with_opendkim(build, keys, selectors, tmp_path):
    signed = sign(build, keys, MESSAGE, selectors)
    p = netns_run(keys["zones"], ["opendkim-testmsg"], signed, tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"" and p.stderr == b"", (p.stdout, p.stderr)
    # OpenDKIM does see a broken signature.
    p = netns_run(keys["zones"], ["opendkim-testmsg"], signed.replace(b"Hello Bob", b"Hello Rob"), tmp_path)
    assert p.returncode != 0 and b"Bad signature" in p.stderr, p.stderr


# ---- others sign, postern verifies ---------------------------------------------------

def ed25519_seed_b64(keyfile):
    der = subprocess.run(["openssl", "pkey", "-in", str(keyfile), "-outform", "DER"], capture_output=True,
                         check=True).stdout
    return base64.b64encode(der[-32:])


@pytest.mark.parametrize("variant", ["rsa-relaxed", "rsa-simple", "rsa-length", "ed25519", "ed25519-simple",
                                     "rsa-sha1"])
def test_dkimpy_signatures_verify_in_postern(build, keys, variant):
    if variant.startswith("ed25519"):
        sel, key, alg = b"ed", ed25519_seed_b64(keys["ed"]), b"ed25519-sha256"
    else:
        sel, key, alg = b"rsa", keys["rsa"].read_bytes(), b"rsa-sha1" if variant == "rsa-sha1" else b"rsa-sha256"
    canon = (b"simple", b"simple") if variant.endswith("simple") else (b"relaxed", b"relaxed")
    sig = dkim.sign(crlf(MESSAGE), sel, b"example.org", key, canonicalize=canon, signature_algorithm=alg,
                    length=variant == "rsa-length")
    signed = sig + crlf(MESSAGE)
    with DnsServer(keys["zones"]) as server:
        for form in (signed, lf(signed)):
            sigs = verify(build, server, form)
            want = "policy" if variant == "rsa-sha1" else "pass"
            assert [s["result"] for s in sigs] == [want], sigs
        if variant == "rsa-length":
            sigs = verify(build, server, lf(signed) + b"appended after signing\n")
            assert sigs[0]["result"] == "pass" and sigs[0]["unsigned_body"] == 28, sigs  # 2 empty lines + the text
        else:
            sigs = verify(build, server, lf(signed).replace(b"odd   spacing", b"odd spacing!"))
            assert sigs[0]["result"] in ("fail", "policy"), sigs


@pytest.fixture(scope="module")
def opendkim_signer():
    return OpenDKIMSigner()


@pytest.mark.parametrize("alg,hc,bc", [("rsa-sha256", "relaxed", "relaxed"), ("rsa-sha256", "simple", "simple"),
                                       ("rsa-sha256", "relaxed", "simple"), ("ed25519-sha256", "relaxed", "simple")])
def test_libopendkim_signatures_verify_in_postern(build, keys, opendkim_signer, alg, hc, bc):
    sel = "ed" if alg.startswith("ed") else "rsa"
    signed = opendkim_signer.sign(MESSAGE, "example.org", sel, keys[sel], alg, hc, bc)
    assert b"a=%s; c=%s/%s;" % (alg.encode(), hc.encode(), bc.encode()) in signed
    with DnsServer(keys["zones"]) as server:
        for form in (signed, lf(signed)):
            sigs = verify(build, server, form)
            assert [(s["result"], s["algorithm"]) for s in sigs] == [("pass", alg)], sigs
        sigs = verify(build, server, lf(signed).replace(b"Hello Bob", b"Hello Rob"))
        assert sigs[0]["result"] == "fail"


def test_opendkim_testmsg_signature_is_rsa_sha1_policy(build, keys):
    """opendkim-testmsg signs rsa-sha1, which RFC 8301 forbids verifiers to
    accept: postern recognises the signature and reports policy."""
    p = subprocess.run(["opendkim-testmsg", "-d", "example.org", "-s", "rsa", "-k", str(keys["rsa"])],
                       input=MESSAGE, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert b"a=rsa-sha1;" in p.stdout
    with DnsServer(keys["zones"]) as server:
        sigs = verify(build, server, p.stdout)
        assert [(s["result"], s["reason"]) for s in sigs] == [("policy", "rsa-sha1 is not accepted (RFC 8301)")]
        assert server.count() == 0  # decided without a key lookup


# ---- outcomes over DNS -------------------------------------------------------------------

def test_verify_outcomes_over_dns(build, keys):
    signed = sign(build, keys, MESSAGE, ("rsa", "ed"))
    zones = dict(keys["zones"])
    with DnsServer({}) as server:
        sigs = verify(build, server, signed)
        assert [(s["result"], s["reason"]) for s in sigs] == [
            ("permerror", "no key at rsa._domainkey.example.org"),
            ("permerror", "no key at ed._domainkey.example.org")]
        server.set_zones({"rsa._domainkey.example.org": ["TIMEOUT"],
                          "ed._domainkey.example.org": [("TXT", "v=DKIM1; k=ed25519; p=")]})
        sigs = verify(build, server, signed)
        assert [(s["result"], s["reason"]) for s in sigs] == [
            ("temperror", "DNS failure looking up the key (timeout)"),
            ("permerror", "key revoked (empty p=)")]
        testing = "v=DKIM1; k=rsa; t=y; p=" + keys["rsa_record"].split("p=")[1]
        zones["rsa._domainkey.example.org"] = [("TXT", [testing[i:i + 255] for i in range(0, len(testing), 255)])]
        server.set_zones(zones)
        sigs = verify(build, server, signed.replace(b"Hello Bob", b"Hello Rob"))
        assert [s["result"] for s in sigs] == ["neutral", "fail"]
        assert sigs[0]["testing"] is True
        sigs = verify(build, server, MESSAGE)
        assert sigs == []
        p = run_postern(build, "dkim", "verify", "--resolver", server.address, input=MESSAGE)
        assert p.stdout == b"dkim=none (no signature)\n"


@pytest.mark.normal_build_only
def test_bench_subcommand(build, keys, tmp_path):
    msg = tmp_path / "m.eml"
    msg.write_bytes(MESSAGE)
    for mode in ("sign", "verify"):
        p = run_postern(build, "dkim", "bench", "--mode", mode, "--domain", "example.org", "--selector", "ed",
                        "--key", keys["ed"], "--message", msg, "--seconds", "0.2")
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout)
        assert r["mode"] == mode and r["iterations"] == r["passes"] > 0 and r["per_second"] > 0, r


def test_keygen_makes_the_dual_pair_by_default(postern_factory):
    """`postern dkim keygen --domain D` for a new domain makes what postern
    signs with by default: RSA-2048 and Ed25519 under dated selectors, both
    records printed, both keys 0600 under DATA_DIR/dkim/D/."""
    import stat
    import time as _time
    pt = postern_factory(start=False)
    p = pt.cli("dkim", "keygen", "--domain", "dual.example")
    assert p.returncode == 0, p.stderr
    month = _time.strftime("%Y%m", _time.gmtime())
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 2, p.stdout
    assert lines[0].startswith("rsa-%s._domainkey.dual.example. IN TXT" % month) and "k=rsa" in lines[0]
    assert lines[1].startswith("ed-%s._domainkey.dual.example. IN TXT" % month) and "k=ed25519" in lines[1]
    d = pt.data_dir / "dkim" / "dual.example"
    for sel in ("rsa-" + month, "ed-" + month):
        f = d / (sel + ".key")
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    # Run again: nothing is replaced, and it says so.
    p = pt.cli("dkim", "keygen", "--domain", "dual.example")
    assert p.returncode == 1 and "never replaced" in p.stderr
    # --out without --selector is a usage error.
    assert pt.cli("dkim", "keygen", "--domain", "dual.example", "--out", "/tmp/x.key").returncode == 2
