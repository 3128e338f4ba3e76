#!/usr/bin/python3
"""pyspf_bench: pyspf's side of the SPF benchmark (run by bench/spf/run).

Usage: pyspf_bench.py --server HOST:PORT --input FILE --rounds N [--per-case]

Same contract as `postern spf bench`: FILE has one check per line,
"IP SENDER HELO" (SENDER "<>" for the null sender); the first round warms
the cache and is not timed, the next N rounds are timed; prints one JSON
object {"evaluations", "seconds", "per_second", "cpu_seconds", "results"}.
With --per-case, the result of every check of the warm round is added
("per_case", in input order).

pyspf is used as an application uses it: spf.check2(i, s, h) with its own
dnspython DNS driver (spf.DNSLookup_dnspython, which calls
dns.resolver.query on dnspython's default resolver). That default resolver
is pointed at the benchmark's DNS server and given dnspython's cache
(dns.resolver.Cache), which keeps positive and negative answers (NXDOMAIN,
NODATA) for their TTL. pyspf itself only caches within one check (query
objects start with an empty cache), so the resolver's cache is what keeps it
warm from one check to the next.
"""
import argparse
import json
import sys
import time
import warnings

import dns.name
import dns.resolver
import spf

RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror", "permerror")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--per-case", action="store_true")
    a = ap.parse_args()

    host, port = a.server.rsplit(":", 1)
    res = dns.resolver.Resolver(configure=False)
    res.nameservers = [host]
    res.port = int(port)
    res.domain = dns.name.root      # no search list: names are tried as given
    res.search = []
    res.timeout = res.lifetime = 5.0
    res.cache = dns.resolver.Cache()
    dns.resolver.default_resolver = res
    # pyspf calls the deprecated dns.resolver.query(); keep its warning quiet
    warnings.simplefilter("ignore", DeprecationWarning)

    cases = []
    with open(a.input) as f:
        for line in f:
            p = line.split()
            if len(p) == 3:
                cases.append((p[0], "" if p[1] == "<>" else p[1], p[2]))

    per_case = []
    for ip, s, h in cases:  # warm-up round, not timed
        per_case.append(spf.check2(i=ip, s=s, h=h)[0])
    print("WARM", flush=True)  # the runner counts DNS queries from here on

    counts = dict.fromkeys(RESULTS, 0)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.rounds):
        for ip, s, h in cases:
            r = spf.check2(i=ip, s=s, h=h)[0]
            counts[r] = counts.get(r, 0) + 1
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = a.rounds * len(cases)
    out = {"evaluations": n, "seconds": round(secs, 6), "per_second": round(n / secs, 1),
           "cpu_seconds": round(cpu, 6), "results": counts}
    if a.per_case:
        out["per_case"] = per_case
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
