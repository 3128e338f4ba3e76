"""
spfsuite: the openspf.org SPF test suites (RFC 7208 and RFC 4408, shipped by
Debian's python3-spf) as scenarios whose zone data dnsserver.DnsServer serves.

A suite file is a YAML stream; each document is a scenario with a
`zonedata` map and a `tests` map. Each test gives host (the client IP),
mailfrom, helo, result (one result or a list of acceptable ones, the first
preferred), and sometimes explanation, spec, strict. An explanation of
"DEFAULT" stands for the implementation's own default explanation (pyspf's
driver sets it to the word DEFAULT), not for a text to compare.

The zone data is read exactly as the suites' own driver (testspf.py in
python3-spf) reads it:

- a TXT or SPF value is one string or a list of strings (one record made of
  several character-strings); `TXT: NONE` means no TXT record, and stops the
  next rule for that name;
- every SPF (type 99) record is also served as a TXT record, unless the name
  lists a TXT record (or TXT: NONE) of its own;
- `TIMEOUT` in a name's list: queries of a type that has records listed
  before it are answered, every other query for the name times out
  (records after it are never served);
- MX values are [preference, exchange].

`SPF: []` (a record with no character-strings, which RFC 1035 does not
allow; the suite uses it to check that "null text" does not crash an
implementation) is served as it is: a TXT/SPF record of RDLENGTH 0.
(libunbound's synchronous ub_resolve() turns such an answer into SERVFAIL;
its event API, which postern uses, hands over the packet as received.)

Identical records at one name (the suite's multispf1 lists `v=spf1 -all`
twice) are served once: DNS holds a set of records, and the suite says such a
test "cannot be reliably reproduced with live DNS" (it accepts both results).

Strings with \\xNN escapes are bytes: they are served as those bytes when
every character fits in one (latin-1), else as UTF-8.

Also here, for the SPF tests that use these: pyspf_using()/pyspf_check() run
pyspf (python3-spf) against a DnsServer; pyspf_rfc_limits() makes pyspf
count its processing limits the way RFC 7208 section 4.6.4 words them (see
there); postern_spf() runs `postern spf check --json` and describe() prints
a run for an assertion message.
"""
import contextlib
import gzip
import threading
from collections import namedtuple
from pathlib import Path

import yaml

SUITE_DIR = Path("/usr/share/doc/python3-spf")
SUITES = {
    "rfc7208": SUITE_DIR / "rfc7208-tests.yml.gz",
    "rfc4408": SUITE_DIR / "rfc4408-tests.yml.gz",
}

# Query types a suite TIMEOUT entry makes time out (when the name has no
# records of that type before it). Anything else asked gets NODATA.
TIMEOUT_TYPES = ("A", "AAAA", "MX", "TXT", "SPF", "PTR", "CNAME", "NS", "SOA", "ANY")

Case = namedtuple("Case", "id suite scenario name host mailfrom helo results explanation spec "
                  "description strict")


class Scenario:
    def __init__(self, suite, index, doc):
        self.suite = suite
        self.index = index
        self.description = doc.get("description", "")
        self.raw_zonedata = doc.get("zonedata") or {}
        self.zones = zones_from_suite(self.raw_zonedata)
        self.cases = []
        for name, t in doc["tests"].items():
            res = t["result"]
            results = tuple(res) if isinstance(res, list) else (res,)
            self.cases.append(Case(
                id="%s/%d/%s" % (suite, index, name), suite=suite, scenario=self, name=name,
                host=str(t["host"]), mailfrom=str(t.get("mailfrom", "")), helo=str(t.get("helo", "")),
                results=results, explanation=t.get("explanation"), spec=t.get("spec"),
                description=t.get("description", ""), strict=t.get("strict")))

    def __repr__(self):
        return "<Scenario %s/%d %s>" % (self.suite, self.index, self.description)


def _values(rtype, value):
    if rtype in ("TXT", "SPF"):
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value]
    return value


def zones_from_suite(zonedata):
    """The suite's zonedata as dnsserver zone data (see the module doc)."""
    zones = {}
    for name, entries in zonedata.items():
        out = []          # (type, value) in the suite's order, then generated TXT
        has_txt = False
        spf = []
        timeout_at = None
        for e in entries:
            if isinstance(e, str):
                if e != "TIMEOUT":
                    raise ValueError("unknown zone entry %r at %s" % (e, name))
                if timeout_at is None:
                    timeout_at = len(out)
                continue
            for rtype, value in e.items():
                value = _values(rtype, value)
                if rtype == "TXT":
                    has_txt = True
                elif rtype == "SPF":
                    spf.append(value)
                if value == ["NONE"]:
                    continue
                if rtype == "MX":
                    value = (int(value[0]), str(value[1]))
                out.append((rtype, value))
        if not has_txt:
            out.extend(("TXT", v) for v in spf)
        if timeout_at is not None:
            answered = {t for t, _ in out[:timeout_at] if t != "CNAME"}
            out = out[:timeout_at]
            slow = [t for t in TIMEOUT_TYPES if t not in answered]
            out.insert(0, ("TIMEOUT", slow))
        records = []
        seen = set()
        for r in out:
            k = (r[0], repr(r[1]).lower() if r[0] in ("PTR", "CNAME", "MX") else repr(r[1]))
            if k in seen:
                continue    # identical records: DNS holds one
            seen.add(k)
            records.append(r)
        zones[name] = records
    return zones


def load(suite):
    """The scenarios of a suite ("rfc7208" or "rfc4408"), in file order,
    indexed from 0."""
    with gzip.open(SUITES[suite], "rb") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return [Scenario(suite, i, d) for i, d in enumerate(docs)]


def cases(suite):
    return [c for s in load(suite) for c in s.cases]


# --- pyspf (python3-spf) asking a real DNS server

_pyspf_lock = threading.Lock()


def pyspf_lookup(port, host="127.0.0.1", timeout=1.0):
    """A replacement for spf.DNSLookup that asks the server at host:port
    with dnspython (UDP, then TCP when truncated), as pyspf's own dnspython
    driver does, with a per-query time limit of `timeout` seconds."""
    import dns.exception
    import dns.resolver
    import spf

    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [host]
    res.port = port
    res.timeout = timeout
    res.lifetime = timeout
    res.retry_servfail = False

    def lookup(name, qtype, strict=True, timeout=None):
        out = []
        try:
            answers = res.resolve(name, qtype, search=False)
            for rdata in answers:
                if qtype in ("A", "AAAA"):
                    out.append(((name, qtype), rdata.address))
                elif qtype == "MX":
                    out.append(((name, qtype), (rdata.preference, rdata.exchange)))
                elif qtype == "PTR":
                    out.append(((name, qtype), rdata.target.to_text(True)))
                elif qtype in ("TXT", "SPF"):
                    out.append(((name, qtype), list(rdata.strings)))
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            pass
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as e:
            raise spf.TempError("DNS " + str(e))
        except (dns.name.LabelTooLong, dns.name.EmptyLabel, dns.name.NameTooLong) as e:
            raise spf.TempError("DNS " + str(e))
        return out
    return lookup


@contextlib.contextmanager
def pyspf_using(port, host="127.0.0.1", timeout=1.0):
    """Within the block, pyspf resolves through the server at host:port
    (pyspf's resolver is a module global: one user at a time)."""
    import spf
    with _pyspf_lock:
        saved = spf.DNSLookup
        spf.DNSLookup = pyspf_lookup(port, host, timeout)
        try:
            yield spf
        finally:
            spf.DNSLookup = saved


def pyspf_check(spf, ip, sender, helo, default_exp="DEFAULT", strict=True):
    """(result, explanation) from pyspf, as the suite's driver asks it: a
    null sender means postmaster@helo; the default explanation is
    `default_exp`."""
    q = spf.query(i=ip, s=sender, h=helo, strict=strict)
    if default_exp is not None:
        q.set_default_explanation(default_exp)
    res, _code, exp = q.check()
    res = {"unknown": "permerror", "error": "temperror"}.get(res, res)
    return res, exp


# --- postern's CLI: `postern spf check`

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "temperror", "permerror")

SpfRun = namedtuple("SpfRun", "argv status stdout stderr elapsed json")


def spf_builds():
    """The builds to run (posterntest.available_builds: POSTERN_BUILDS, or
    build and build-asan when they exist)."""
    from posterntest import available_builds
    return available_builds()


def postern_spf(build, resolver, ip, sender, helo, identity=None, dns_timeout="1s", extra=(),
                timeout=60):
    """Runs `BUILD/postern spf check ... --json` and returns an SpfRun whose
    json is the parsed output (None when stdout is not one JSON object).
    Raises AssertionError on a sanitizer report, a crash (death by signal)
    or a run longer than `timeout` seconds (a hang)."""
    import json
    import subprocess
    import time
    from posterntest import build_env, sanitizer_report

    argv = [str(ROOT / build / "postern"), "spf", "check", "--resolver", resolver,
            "--ip", ip, "--sender", sender, "--helo", helo]
    if identity:
        argv += ["--identity", identity]
    if dns_timeout:
        argv += ["--dns-timeout", dns_timeout]
    argv += list(extra) + ["--json"]
    t = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, env=build_env(build), timeout=timeout,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("postern spf check did not finish in %ds: %s" % (timeout, argv))
    elapsed = time.monotonic() - t
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    rep = sanitizer_report(err)
    assert rep is None, "sanitizer report from %s:\n%s" % (argv, rep)
    assert p.returncode >= 0, "postern died by signal %d: %s\n%s" % (-p.returncode, argv, err[-2000:])
    try:
        doc = json.loads(out)
        if not isinstance(doc, dict):
            doc = None
    except ValueError:
        doc = None
    return SpfRun(argv, p.returncode, out, err, elapsed, doc)


def describe(run):
    """A run, readable in an assertion message."""
    j = run.json or {}
    trace = "\n".join("    %s %s %s" % (t.get("query"), t.get("status"), t.get("answers"))
                      for t in (j.get("trace") or []) if isinstance(t, dict))
    return ("argv: %s\nstatus %s, %.2fs\nresult=%s explanation=%r problem=%r lookups=%s void=%s\n"
            "trace:\n%s\nstdout: %s\nstderr: %s" % (
                " ".join(repr(a) if (" " in a or not a) else a for a in run.argv), run.status,
                run.elapsed, j.get("result"), j.get("explanation"), j.get("problem"),
                j.get("lookups"), j.get("void_lookups"), trace, run.stdout[:1500],
                run.stderr[-1500:]))


# --- pyspf read the way RFC 7208 section 4.6.4 counts limits

_variant_cache = {}


def _patched(cls, method, replacements):
    """cls.method recompiled from its source with the replacements made (each
    must apply exactly once), in the spf module's namespace."""
    import inspect
    import spf
    src = inspect.getsource(getattr(cls, method))     # as indented in the class
    for old, new in replacements:
        if src.count(old) != 1:
            raise RuntimeError("pyspf's %s changed: cannot patch %r" % (method, old))
        src = src.replace(old, new)
    lines = src.splitlines(True)
    indent = lines[0][:len(lines[0]) - len(lines[0].lstrip())]
    # dedent by the def's indentation; comments may sit further left
    src = "".join(ln[len(indent):] if ln.startswith(indent) else ln.lstrip() for ln in lines)
    ns = {}
    exec(compile(src, "<pyspf %s, patched>" % method, "exec"), vars(spf), ns)
    return ns[method]


@contextlib.contextmanager
def pyspf_rfc_limits():
    """Within the block (and pyspf_using's lock, which must be held), pyspf
    counts its processing limits as RFC 7208 section 4.6.4 words them:

    - redirect= counts as a DNS-querying term when it is evaluated, that is
      when no mechanism matched (section 6.1); stock pyspf counts it as soon
      as it parses the record;
    - a "void lookup" is a term whose own query comes back empty ("limit the
      number of 'terms' for which DNS queries return ..."): the address
      lookups the mx and ptr mechanisms make for each name they found do not
      count (for ptr those names are the client's to choose, see the MX/PTR
      disparity paragraph); stock pyspf counts every empty answer.
    """
    import spf
    if not _variant_cache:
        made = {}
        made["check0"] = _patched(spf.query, "check0", [
            ("            elif mod == 'redirect':\n                self.check_lookups()\n",
             "            elif mod == 'redirect':\n"),
            ("            if redirect:\n",
             "            if redirect:\n                self.check_lookups()\n"),
        ])
        made["dns_mx"] = _patched(spf.query, "dns_mx", [
            ("self.dns_a(mx[1],self.A)", "self.dns(mx[1],self.A,ignore_void=True)")])
        made["validated_ptrs"] = _patched(spf.query, "validated_ptrs", [
            ("self.dns_a(p,self.A)", "self.dns(p,self.A,ignore_void=True)")])
        _variant_cache.update(made)
    saved = {k: spf.query.__dict__[k] for k in _variant_cache}
    try:
        for k, f in _variant_cache.items():
            setattr(spf.query, k, f)
        yield spf
    finally:
        for k, f in saved.items():
            setattr(spf.query, k, f)
