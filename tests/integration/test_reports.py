"""
DMARC aggregate reports and SMTP TLS reports (src/report/, `postern reports`).

- Every sample in ../shared/testdata/dmarc-reports and tls-reports is
  imported with `postern reports import`; the expected record counts are
  found here independently (Python's gzip, zipfile, ElementTree and json),
  a sample Python's own parser refuses must be refused too, and importing
  everything again stores nothing twice (checked in the database).
- The summaries: per reporter and per source, with the pass rates computed
  here from the XML; sources flagged as not ours from [reports]
  our_addresses and from the SPF record served by a DNS server on loopback.
- Hostile input is refused within the fixed bounds, with the reason: billion
  laughs, an external entity naming a local file, a 1 GiB gzip bomb, a zip
  with a 1 GiB entry and one with many entries, more records than
  max_records, deep nesting, invalid UTF-8, truncated gzip, malformed JSON.
- The daemon: a report mailed over SMTP (smtplib, a gzip attachment) to the
  [reports] address is delivered, then parsed and stored off the event
  loop; a duplicate and a hostile one are logged as such, and the daemon
  goes on serving.
"""
import email.policy
import gzip
import io
import json
import smtplib
import sqlite3
import time
import xml.etree.ElementTree as ET
import zipfile
import zlib
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import pytest

from dnsserver import DnsServer

SHARED = Path(__file__).resolve().parents[3] / "shared" / "testdata"
DMARC_DIR = SHARED / "dmarc-reports"
TLS_DIR = SHARED / "tls-reports"


def sample_files():
    files = sorted(p for d in (DMARC_DIR, TLS_DIR) for p in d.rglob("*")
                   if p.is_file() and not p.name.startswith("LICENSE"))
    assert len(files) >= 18, files
    return files


def unpacked(path):
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            assert len(names) == 1
            return z.read(names[0])
    return data


def local(tag):
    return tag.rsplit("}", 1)[-1]


def expected(path):
    """What the sample holds, read by Python: ("dmarc", report_id, records,
    messages), ("tls", report_id, policies, sessions), or ("refused", why)."""
    data = unpacked(path)
    if data.lstrip()[:1] == b"{":
        doc = json.loads(data)
        pols = doc["policies"]
        sessions = sum(p["summary"]["total-successful-session-count"] + p["summary"]["total-failure-session-count"]
                       for p in pols)
        return ("tls", doc["report-id"], len(pols), sessions)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        return ("refused", str(e))
    records = [r for r in root if local(r.tag) == "record"]
    rid = [e.text for e in root.iter() if local(e.tag) == "report_id"][0]
    messages = sum(int([e.text for e in r.iter() if local(e.tag) == "count"][0]) for r in records)
    return ("dmarc", rid, len(records), messages)


def import_json(pt, *files):
    p = pt.cli("reports", "import", "--json", *files, timeout=300)
    assert p.stdout.strip().startswith("["), p.stdout + p.stderr
    return p.returncode, json.loads(p.stdout)


def db_count(pt, table):
    db = sqlite3.connect("file:%s?immutable=1" % (pt.data_dir / "state.db"), uri=True)
    try:
        return db.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
    finally:
        db.close()


def daemon(postern_factory, reports=None, start=False, **extra):
    cfg = {"reports": dict({"check_spf": "no"}, **(reports or {}))}
    cfg.update(extra)
    return postern_factory(config=cfg, start=start)


def test_every_sample_is_imported_with_its_record_count(postern_factory):
    pt = daemon(postern_factory)
    files = sample_files()
    want = {str(f): expected(f) for f in files}
    assert any(w[0] == "refused" for w in want.values())  # bad.com is not well-formed
    rc, out = import_json(pt, *files)
    assert [o["file"] for o in out] == [str(f) for f in files]
    total_dmarc = total_tls = 0
    for o in out:
        w = want[o["file"]]
        if w[0] == "refused":
            assert o["result"] == "refused", o
            assert o["reason"], o
            continue
        assert o["result"] == "stored", o
        assert o["kind"] == w[0], o
        assert o["report_id"] == w[1], o
        assert o["records"] == w[2], o
        assert o["messages"] == w[3], o
        if w[0] == "dmarc":
            total_dmarc += w[2]
        else:
            total_tls += w[2]
    assert rc == 1  # one file was refused
    assert db_count(pt, "dmarc_record") == total_dmarc > 10000
    assert db_count(pt, "tls_policy") == total_tls == 2
    reports = db_count(pt, "dmarc_report")

    # Again: every report is a duplicate, and nothing more is stored.
    rc, again = import_json(pt, *files)
    assert [o["result"] for o in again] == [("refused" if want[o["file"]][0] == "refused" else "duplicate")
                                             for o in again]
    assert db_count(pt, "dmarc_record") == total_dmarc
    assert db_count(pt, "dmarc_report") == reports
    assert db_count(pt, "tls_policy") == total_tls

    # The human form: one line per file, the refusal with its reason on stderr.
    p = pt.cli("reports", "import", str(DMARC_DIR / "parsedmarc" / "empty_reason.xml"),
               str(DMARC_DIR / "opendmarc" / "bad.com!example.com!1337140800!1337227200.xml"))
    assert p.returncode == 1
    assert "empty_reason.xml: duplicate dmarc report from example.org id 20240125141224705995: 1 records, " \
           "2 messages" in p.stdout
    assert "bad.com!example.com!1337140800!1337227200.xml: refused: " in p.stderr
    assert "1 of 2 files refused" in p.stderr


def test_a_whole_mail_file_is_imported(postern_factory, workdir):
    pt = daemon(postern_factory)
    sample = DMARC_DIR / "parsedmarc" / "fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz"
    msg = MIMEMultipart()
    msg["From"] = "reports@fastmaildmarc.com"
    msg["Subject"] = "Report Domain: example.com"
    msg.attach(MIMEText("A DMARC report."))
    msg.attach(MIMEApplication(sample.read_bytes(), "gzip", Name=sample.name))
    eml = workdir / "report.eml"
    eml.write_bytes(msg.as_bytes())
    rc, out = import_json(pt, eml)
    assert rc == 0
    assert out[0]["result"] == "stored" and out[0]["report_id"] == "102675056" and out[0]["records"] == 1
    assert out[0]["via"] == "mail attachment application/gzip, gzip"


def rates_from_xml(files, org):
    """Messages and pass counts for one reporter, computed from the XML."""
    n = dkim = spf = dmarc = 0
    for f in files:
        root = ET.fromstring(unpacked(f))
        if [e.text or "" for e in root.iter() if local(e.tag) == "org_name"][0] != org:
            continue
        for r in (r for r in root if local(r.tag) == "record"):
            vals = {local(e.tag): (e.text or "").strip() for e in r.iter()}
            c = int(vals["count"])
            pe = [e for e in r.iter() if local(e.tag) == "policy_evaluated"][0]
            pev = {local(e.tag): (e.text or "").strip() for e in pe}
            n += c
            dkim += c * (pev.get("dkim") == "pass")
            spf += c * (pev.get("spf") == "pass")
            dmarc += c * (pev.get("dkim") == "pass" or pev.get("spf") == "pass")
    return n, dkim, spf, dmarc


def test_dmarc_summary_flags_sources_that_are_not_ours(postern_factory):
    zones = {"example.com": [("TXT", "v=spf1 ip4:12.20.127.0/24 -all")]}
    with DnsServer(zones) as dns:
        pt = daemon(postern_factory, reports={"our_addresses": "199.230.200.36", "check_spf": "yes"},
                    dns={"resolver": "127.0.0.1:%d" % dns.port, "trust_anchor": "", "timeout": "1s"})
        files = sorted(p for p in (DMARC_DIR / "parsedmarc").iterdir() if not p.name.startswith("LICENSE"))
        rc, out = import_json(pt, *files)
        assert rc == 0 and all(o["result"] == "stored" for o in out), out
        p = pt.cli("reports", "dmarc", "--json")
        assert p.returncode == 0, p.stderr
        doc = json.loads(p.stdout)
        human = pt.cli("reports", "dmarc")
    src = {(s["source_ip"], s["domain"]): s for s in doc["sources"]}
    assert src[("199.230.200.36", "example.com")]["ours"] is True
    assert src[("199.230.200.36", "example.com")]["ours_by"] == "our_addresses"
    assert src[("199.230.200.36", "example.com")]["messages"] == 3  # three reporters saw it
    assert src[("12.20.127.122", "example.com")]["ours"] is True
    assert src[("12.20.127.122", "example.com")]["ours_by"] == "spf"
    assert src[("109.203.100.17", "example.com")]["ours"] is False
    assert src[("109.203.100.17", "example.com")]["spf"] == "fail"
    # indemed.com publishes no SPF here: its source is not ours either.
    assert src[("104.195.80.20", "indemed.com")]["ours"] is False
    assert src[("104.195.80.20", "indemed.com")]["spf"] == "none"
    foreign = [s for s in doc["sources"] if s["ours"] is False]
    assert doc["foreign_sources"] == len(foreign) == len(doc["sources"]) - 3
    # Pass rates per reporter, computed from the XML here.
    rep = {r["org_name"]: r for r in doc["reporters"]}
    for org in ("example.org", "Sample Reporter", "usssa.com", "acme.com"):
        n, dkim, spf, dmarc = rates_from_xml(files, org)
        assert (rep[org]["messages"], rep[org]["dkim_pass"], rep[org]["spf_pass"], rep[org]["dmarc_pass"]) == \
            (n, dkim, spf, dmarc), org
    assert rep["Sample Reporter"]["messages"] == 123 and rep["Sample Reporter"]["dmarc_pass_rate"] == 1.0
    assert rep["example.org"]["disposition"] == {"none": 2, "quarantine": 0, "reject": 0}
    # The table marks them, and says what it means.
    assert human.returncode == 0
    lines = human.stdout.splitlines()
    assert lines[0] == "Reporters" and lines[1].split()[:3] == ["REPORTER", "EMAIL", "REPORTS"]
    line = [ln for ln in lines if ln.startswith("109.203.100.17 ")][0]
    assert line.endswith("NOT OURS (spf fail)")
    assert [ln for ln in lines if ln.startswith("199.230.200.36 ")][0].endswith("yes (our_addresses)")
    assert "%d sources are NOT OURS" % len(foreign) in human.stdout
    # --since keeps the reports whose period ends on or after the date.
    p = pt.cli("reports", "dmarc", "--json", "--no-spf", "--since", "2024-01-01")
    since = json.loads(p.stdout)
    assert sorted(r["org_name"] for r in since["reporters"]) == ["Outlook.com", "example.org"]
    assert pt.cli("reports", "dmarc", "--since", "yesterday-ish").returncode == 2


def test_tls_summary(postern_factory):
    pt = daemon(postern_factory)
    files = sorted(TLS_DIR.glob("*.json"))
    rc, out = import_json(pt, *files)
    assert rc == 0
    p = pt.cli("reports", "tls", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    want_pol, want_fail = {}, {}
    for f in files:
        d = json.loads(f.read_text())
        for pol in d["policies"]:
            key = (d["organization-name"], pol["policy"]["policy-domain"])
            want_pol[key] = (pol["summary"]["total-successful-session-count"],
                             pol["summary"]["total-failure-session-count"])
            for fd in pol.get("failure-details", []):
                k = (pol["policy"]["policy-domain"], fd["result-type"], fd.get("sending-mta-ip"))
                want_fail[k] = want_fail.get(k, 0) + fd["failed-session-count"]
    assert {(p["org_name"], p["domain"]): (p["successful_sessions"], p["failed_sessions"])
            for p in doc["policies"]} == want_pol
    assert {(f["domain"], f["result_type"], f["sending_ip"]): f["failed_sessions"] for f in doc["failures"]} == \
        want_fail
    human = pt.cli("reports", "tls").stdout
    assert "Company-X" in human and "starttls-not-supported" in human and "5.4%" in human


def billion_laughs():
    ents = "".join('<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">' % ((i,) + (i - 1,) * 10)
                   for i in range(1, 10))
    return ('<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY l0 "lol">%s]>'
            "<feedback><report_metadata><org_name>&l9;</org_name></report_metadata></feedback>" % ents).encode()


def report_xml(nrecords, org="Bulk", rid="bulk-1"):
    rec = ("<record><row><source_ip>192.0.2.%d</source_ip><count>1</count><policy_evaluated>"
           "<disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>"
           "<identifiers><header_from>example.com</header_from></identifiers></record>")
    return ("<feedback><report_metadata><org_name>%s</org_name><report_id>%s</report_id><date_range>"
            "<begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>"
            "<policy_published><domain>example.com</domain><p>none</p></policy_published>%s</feedback>"
            % (org, rid, "".join(rec % (i % 250 + 1) for i in range(nrecords)))).encode()


def gzip_bomb(gib=1):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    parts = [c.compress(chunk) for _ in range(1024 * gib)]
    parts.append(c.flush())
    return b"".join(parts)


def make_hostile(d):
    """Writes the hostile files; returns {name: substring of the reason}."""
    secret = d / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER\n")
    cases = {}

    def put(name, data, why):
        (d / name).write_bytes(data)
        cases[name] = why

    put("laughs.xml", billion_laughs(), "DOCTYPE")
    put("xxe.xml", ('<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY x SYSTEM "file://%s">]>'
                    "<feedback><report_metadata><org_name>&x;</org_name><report_id>x</report_id>"
                    "</report_metadata></feedback>" % secret).encode(), "DOCTYPE")
    put("bomb.xml.gz", gzip_bomb(1), "would decompress to more than 32 MiB")
    big = io.BytesIO()
    with zipfile.ZipFile(big, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("report.xml", "w", force_zip64=True) as f:
            chunk = b" " * (1 << 20)
            for _ in range(1024):
                f.write(chunk)
    put("huge-entry.zip", big.getvalue(), "would decompress to more than 32 MiB")
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(1000):
            z.writestr("r%04d.xml" % i, "<feedback/>")
    put("many-entries.zip", many.getvalue(), "1000 entries (at most 16")
    put("too-many-records.xml", report_xml(1001), "more than 1000 records")
    put("deep.xml", b"<feedback>" + b"<a>" * 100000 + b"</a>" * 100000 + b"</feedback>", "nested deeper than 16")
    put("bad-utf8.xml", report_xml(1).replace(b"Bulk", b"B\xff\xfek"), "not well-formed")
    put("truncated.xml.gz", gzip.compress(report_xml(50))[:-40], "truncated")
    put("malformed.json", b'{"organization-name": "x", "policies": [', "malformed")
    put("deep.json", b"[" * 100000, "nested deeper than 8")
    put("bad-utf8.json", b'{"organization-name": "\xff"}', "malformed")
    put("not-a-report.eml", b"From: a@example.net\r\nSubject: hi\r\n\r\nhello\r\n", "no report attachment")
    return cases


@pytest.mark.normal_build_only
def test_hostile_reports_are_refused_within_bounds(postern_factory, workdir):
    pt = daemon(postern_factory, reports={"max_records": "1000"})
    d = workdir / "hostile"
    d.mkdir()
    d.chmod(0o755)
    cases = make_hostile(d)
    for name in cases:
        (d / name).chmod(0o644)
    start = time.monotonic()
    rc, out = import_json(pt, *(d / n for n in cases))
    elapsed = time.monotonic() - start
    assert rc == 1
    got = {Path(o["file"]).name: o for o in out}
    for name, why in cases.items():
        assert got[name]["result"] == "refused", got[name]
        assert why in got[name]["reason"], (name, got[name]["reason"])
    assert elapsed < 60, elapsed
    assert db_count(pt, "dmarc_report") == 0
    assert "TOP-SECRET-MARKER" not in json.dumps(out)
    # The bound is the configured one: 1000 records pass.
    (d / "ok.xml").write_bytes(report_xml(1000))
    (d / "ok.xml").chmod(0o644)
    rc, out = import_json(pt, d / "ok.xml")
    assert rc == 0 and out[0]["records"] == 1000


def test_hostile_reports_refused_on_the_asan_build_too(postern_factory, workdir):
    """The same refusals, smaller (no 1 GiB inputs), on every build."""
    pt = daemon(postern_factory, reports={"max_records": "10", "max_size": "1M"})
    d = workdir / "h"
    d.mkdir()
    d.chmod(0o755)
    files = {
        "laughs.xml": (billion_laughs(), "DOCTYPE"),
        "bomb.gz": (gzip.compress(b"\0" * (8 << 20)), "more than 1 MiB"),
        "records.xml": (report_xml(11), "more than 10 records"),
        "deep.xml": (b"<feedback>" + b"<a>" * 5000, "nested deeper"),
        "trunc.gz": (gzip.compress(report_xml(5))[:-30], "truncated"),
        "bad.json": (b'{"a": [1, 2', "malformed"),
    }
    for n, (data, _) in files.items():
        (d / n).write_bytes(data)
        (d / n).chmod(0o644)
    rc, out = import_json(pt, *(d / n for n in files))
    assert rc == 1
    for o in out:
        why = files[Path(o["file"]).name][1]
        assert o["result"] == "refused" and why in o["reason"], o


def report_mail(attachment, subtype, name, to):
    msg = MIMEMultipart()
    msg["From"] = "noreply-dmarc-support@google.com"
    msg["To"] = to
    msg["Subject"] = "Report domain: example.com Submitter: google.com"
    msg.attach(MIMEText("This is an aggregate report from google.com."))
    msg.attach(MIMEApplication(attachment, subtype, Name=name))
    return msg.as_bytes(policy=email.policy.SMTP)


def wait_log(pt, text, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in pt.log():
            return
        time.sleep(0.1)
    raise AssertionError("no %r in the log:\n%s" % (text, pt.log_tail()))


def test_report_mailed_to_the_daemon_is_stored(postern_factory):
    pt = daemon(postern_factory, reports={"dmarc_address": "dmarc@example.test",
                                          "tls_address": "tlsrpt@example.test"},
                smtp={"max_message_size": "4M"})
    pt.add_alias("dmarc@example.test", "demo@example.test")
    pt.add_alias("tlsrpt@example.test", "alice@example.test")
    pt.start()
    sample = DMARC_DIR / "parsedmarc" / "usssa.com!example.com!1538784000!1538870399.xml"
    mail = report_mail(gzip.compress(sample.read_bytes()), "gzip", sample.name + ".gz", "dmarc@example.test")
    with smtplib.SMTP("127.0.0.1", pt.port, timeout=30) as c:
        c.sendmail("noreply-dmarc-support@google.com", ["dmarc@example.test"], mail)
    wait_log(pt, "result=stored kind=dmarc org=usssa.com report_id=8953b4d4a4ee4218b6ac0e2cb2667ee1 records=2")
    assert len(pt.messages("demo@example.test")) == 1  # delivered as usual
    p = pt.cli("reports", "dmarc", "--json", "--no-spf")
    doc = json.loads(p.stdout)
    assert [(r["org_name"], r["messages"]) for r in doc["reporters"]] == [("usssa.com", 2)]

    # The same report again: a duplicate, still delivered.
    with smtplib.SMTP("127.0.0.1", pt.port, timeout=30) as c:
        c.sendmail("noreply-dmarc-support@google.com", ["dmarc@example.test"], mail)
    wait_log(pt, "result=duplicate kind=dmarc org=usssa.com")
    assert len(pt.messages("demo@example.test")) == 2

    # A TLS report (application/tlsrpt+gzip) to the TLS address.
    tls = (TLS_DIR / "rfc8460.json").read_bytes()
    with smtplib.SMTP("127.0.0.1", pt.port, timeout=30) as c:
        c.sendmail("tlsrpt@company-x.example", ["tlsrpt@example.test"],
                   report_mail(gzip.compress(tls), "tlsrpt+gzip", "report.json.gz", "tlsrpt@example.test"))
    wait_log(pt, "result=stored kind=tls org=Company-X report_id=5065427c-23d3-47ca-b6e0-946ea0e8c4be records=1")

    # Hostile ones: refused with the reason, kept as messages, the daemon serves on.
    for data, why in ((gzip.compress(billion_laughs()), "DOCTYPE"),
                      (gzip_bomb_small(), "would decompress to more than 32 MiB")):
        with smtplib.SMTP("127.0.0.1", pt.port, timeout=30) as c:
            c.sendmail("noreply@example.net", ["dmarc@example.test"],
                       report_mail(data, "gzip", "r.xml.gz", "dmarc@example.test"))
        wait_log(pt, why)
    assert pt.log().count("result=malformed") == 2
    assert len(pt.messages("demo@example.test")) == 4
    # Mail to other addresses is not parsed.
    r = pt.deliver("bob@example.test", mail)
    assert r.code == 250
    time.sleep(0.5)
    assert pt.log().count("event=report ") == 5
    assert pt.running()


def gzip_bomb_small():
    """256 MiB of zeros: about 250 KiB gzipped, past the default 32 MiB."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    return b"".join([c.compress(chunk) for _ in range(256)] + [c.flush()])
