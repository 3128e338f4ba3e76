"""
DKIM and DMARC inside the running daemon, against a real DNS server on
loopback: a message signed by `postern dkim sign` passes DKIM and DMARC and
says so in Authentication-Results; a tampered one fails; the sender's DMARC
policy is applied (reject gets 550 5.7.1, quarantine goes to the Junk
folder), or only recorded with apply_policy = no; every verdict is kept in
the state store.
"""
import re
import sqlite3
import time
import subprocess

import pytest

from dnsserver import DnsServer
from mailfile import make_message
from posterntest import ROOT

SIGNED_DOMAIN = "signer.example"


@pytest.fixture
def dkim_key(tmp_path, build):
    key = tmp_path / "s1.key"
    p = subprocess.run([str(ROOT / build / "postern"), "dkim", "keygen", "--domain", SIGNED_DOMAIN,
                        "--selector", "s1", "--algorithm", "ed25519", "--out", str(key)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    record = re.search(r'"(v=DKIM1;[^"]*)"', p.stdout).group(1)
    return key, record


def zones(record):
    return {
        SIGNED_DOMAIN: [("TXT", "v=spf1 -all")],
        "s1._domainkey." + SIGNED_DOMAIN: [("TXT", record)],
        "_dmarc." + SIGNED_DOMAIN: [("TXT", "v=DMARC1; p=reject; rua=mailto:r@signer.example")],
        "reject.example": [("TXT", "v=spf1 -all")],
        "_dmarc.reject.example": [("TXT", "v=DMARC1; p=reject")],
        "quarantine.example": [("TXT", "v=spf1 -all")],
        "_dmarc.quarantine.example": [("TXT", "v=DMARC1; p=quarantine")],
        "relaxed.example": [("TXT", "v=spf1 ip4:127.0.0.1 ip6:::1 -all")],
        "_dmarc.relaxed.example": [("TXT", "v=DMARC1; p=reject")],
    }


def daemon(postern_factory, dns, **dmarc):
    cfg = {"dns": {"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": "", "timeout": "2s"},
           "spf": {"enabled": "yes"}, "dkim": {"verify": "yes"}, "arc": {"verify": "yes"},
           "dmarc": dict({"enabled": "yes"}, **dmarc)}
    return postern_factory(config=cfg)


def signed(build, key, message):
    p = subprocess.run([str(ROOT / build / "postern"), "dkim", "sign", "--domain", SIGNED_DOMAIN, "--selector",
                        "s1", "--key", str(key)], input=message, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_signed_message_passes_dkim_and_dmarc(postern_factory, build, dkim_key):
    key, record = dkim_key
    with DnsServer(zones(record)) as dns:
        pt = daemon(postern_factory, dns)
        msg = signed(build, key, make_message("signed", sender="alice@" + SIGNED_DOMAIN))
        # SPF fails (-all) but DKIM is aligned: DMARC passes.
        r = pt.deliver("demo@example.test", msg, sender="alice@" + SIGNED_DOMAIN)
        assert r.code == 250, r
        m = pt.messages("demo@example.test")[-1]
        assert "spf=fail smtp.mailfrom=alice@signer.example" in m.authres, m.authres
        assert re.search(r"dkim=pass header\.d=signer\.example .*header\.s=s1 header\.a=ed25519-sha256 header\.b=\S{8}",
                         m.authres), m.authres
        assert "dmarc=pass (p=reject" in m.authres and "header.from=signer.example" in m.authres, m.authres
        # The same message with its body changed: DKIM fails, so DMARC
        # fails and p=reject is applied.
        tampered = msg.replace(b"Hello.", b"Hallo.")
        r = pt.deliver("demo@example.test", tampered, sender="alice@" + SIGNED_DOMAIN)
        assert r.code == 550 and "5.7.1 Message rejected by the DMARC policy of signer.example" in r.text, r
        assert "event=dkim d=signer.example s=s1 a=ed25519-sha256 result=fail" in pt.log()


@pytest.mark.parametrize("apply_policy", ["yes", "no"])
def test_policies_applied_or_recorded(postern_factory, dkim_key, apply_policy):
    key, record = dkim_key
    with DnsServer(zones(record)) as dns:
        pt = daemon(postern_factory, dns, apply_policy=apply_policy)
        r = pt.deliver("demo@example.test", make_message("rej", sender="x@reject.example"), sender="x@reject.example")
        q = pt.deliver("demo@example.test", make_message("quar", sender="x@quarantine.example"),
                       sender="x@quarantine.example")
        # SPF passes for relaxed.example from 127.0.0.1 and is aligned.
        ok = pt.deliver("demo@example.test", make_message("ok", sender="x@relaxed.example"),
                        sender="x@relaxed.example")
        assert ok.code == 250 and q.code == 250
        junk = sorted((pt.maildir("demo@example.test") / ".Junk" / "new").glob("*")) \
            if (pt.maildir("demo@example.test") / ".Junk").exists() else []
        inbox = pt.messages("demo@example.test")
        if apply_policy == "yes":
            assert r.code == 550 and "5.7.1" in r.text, r
            assert len(junk) == 1 and b"Subject: quar" in junk[0].read_bytes()
            assert [m.header("Subject") for m in inbox] == ["ok"]
        else:
            assert r.code == 250
            assert junk == []
            assert sorted(m.header("Subject") for m in inbox) == ["ok", "quar", "rej"]
            rej = [m for m in inbox if m.header("Subject") == "rej"][0]
            assert "dmarc=fail (p=reject" in rej.authres, rej.authres
        okm = [m for m in inbox if m.header("Subject") == "ok"][0]
        assert "dmarc=pass" in okm.authres and "spf=pass" in okm.authres, okm.authres
    # Verdicts are stored in batches (within VERDICT_FLUSH_MS of 200 ms).
    deadline = time.time() + 5
    while True:
        db = sqlite3.connect(str(pt.data_dir / "state.db"))
        rows = db.execute("SELECT header_from, spf_result, dmarc_result, disposition, policy_published "
                          "FROM auth_verdict ORDER BY id").fetchall()
        db.close()
        if len(rows) >= 3 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("reject.example", "fail", "fail", "reject"),
        ("quarantine.example", "fail", "fail", "quarantine"),
        ("relaxed.example", "pass", "pass", "none"),
    ], rows
    assert rows[0][4] == "v=DMARC1; p=reject"


def test_message_without_from_is_refused(postern_factory, dkim_key):
    key, record = dkim_key
    with DnsServer(zones(record)) as dns:
        pt = daemon(postern_factory, dns)
        msg = b"To: demo@example.test\r\nSubject: no from\r\n\r\nbody\r\n"
        r = pt.deliver("demo@example.test", msg, sender="x@relaxed.example")
        assert r.code == 550 and "no usable From header field" in r.text, r


@pytest.mark.parametrize("trusted", [True, False])
def test_trusted_arc_sealer_overrides_dmarc(postern_factory, build, tmp_path, dkim_key, trusted):
    """A mailing list (list.example) forwards a message from reject.example:
    SPF and DKIM no longer align, so DMARC fails; the list's valid ARC seal
    overrides the failure only when list.example is a trusted sealer."""
    _, record = dkim_key
    key = tmp_path / "arc.key"
    p = subprocess.run([str(ROOT / build / "postern"), "dkim", "keygen", "--domain", "list.example", "--selector",
                        "arc", "--algorithm", "rsa", "--out", str(key)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    arc_record = re.findall(r'"([^"]*)"', p.stdout)  # 255-byte strings, as published
    z = zones(record)
    z["arc._domainkey.list.example"] = [("TXT", arc_record)]
    with DnsServer(z) as dns:
        sealed = subprocess.run([str(ROOT / build / "postern"), "arc", "sign", "--domain", "list.example",
                                 "--selector", "arc", "--key", str(key), "--authserv-id", "list.example",
                                 "--cv", "none"],
                                input=make_message("via list", sender="x@reject.example"),
                                capture_output=True, timeout=60)
        assert sealed.returncode == 0, sealed.stderr
        pt = daemon(postern_factory, dns, **({"trusted_sealers": "list.example"} if trusted else {}))
        r = pt.deliver("demo@example.test", sealed.stdout, sender="bounces@list.example")
        if trusted:
            assert r.code == 250, r
            m = pt.messages("demo@example.test")[-1]
            assert "arc=pass header.oldest-pass=0" in m.authres, m.authres
            assert "dmarc=fail" in m.authres and "overridden: trusted ARC sealer list.example" in m.authres, m.authres
            assert "event=dmarc_override sealer=list.example disposition=reject" in pt.log()
        else:
            assert r.code == 550 and "DMARC policy of reject.example" in r.text, r
