"""
policies: the SPF benchmark's data, generated deterministically from a seed.

generate(seed) returns (zones, cases, kinds):

  zones  dnsserver.DnsServer zone data: SPF (TXT) records of ~40 sender
         domains and of the mail providers they include, with the A, AAAA
         and MX records their mechanisms ask for; every record has TTL 3600;
  cases  a list of (ip, sender, helo) checks, sender "<>" for the null
         sender (then the HELO name is checked as postmaster@HELO);
  kinds  for each case, the kind of policy it checks (a KINDS entry, or
         "helo" for a null sender: the HELO name's `v=spf1 a -all`).

The policies imitate what senders publish in practice:

  - big providers reached through include chains 2 and 3 deep, like
    _spf.google.com -> _netblocks*.google.com (provg), Outlook's
    spf.protection.outlook.com -> spfa (provm), and a reseller that
    includes provg (sender -> reseller -> provg -> netblocks);
  - ESP records made of ip4/ip6 networks (provs, prova, provx);
  - an exists-based provider (`exists:%{i}._spf.prove.test`) and domains
    with their own `exists:%{ir}.%{v}._spf.%{d}` lists;
  - a, mx (hosts with A and AAAA), a:/mx: with macros, redirect=, exp=;
  - -all, ~all, ?all, parked `v=spf1 -all` domains and domains without SPF;
  - IPv4 and IPv6 clients, some inside the policy (pass) and some outside
    (fail, softfail or neutral, by the record's `all`).

Addresses are documentation and benchmarking ranges (198.18.0.0/15,
192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32): they are only
data in DNS records and in the cases; nothing is ever sent to them.
"""
import ipaddress
import random

TTL = 3600
TLD = "test"


class Gen:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.zones = {}
        self.next_net4 = 0          # /24 index inside 198.18.0.0/15
        self.next_net6 = 0x100      # 2001:db8:XXXX::/48
        self.allowed = {}           # SPF domain -> sample authorized IPs

    # --- records

    def add(self, name, rtype, value):
        self.zones.setdefault(name, []).append((rtype, value, TTL))

    def txt(self, name, text):
        # TXT character-strings are at most 255 bytes: split longer records
        parts = [text[i:i + 250] for i in range(0, len(text), 250)]
        self.add(name, "TXT", parts if len(parts) > 1 else parts[0])

    # --- addresses

    def net4(self, prefix=24):
        """A fresh IPv4 network (a /24, or a part of one) in 198.18.0.0/15."""
        base = ipaddress.IPv4Network("198.18.0.0/15")
        n = self.next_net4
        self.next_net4 += 1
        if n >= 512:
            raise RuntimeError("out of 198.18.0.0/15 space")
        net = ipaddress.IPv4Network((int(base.network_address) + n * 256, 24))
        if prefix > 24:
            net = next(net.subnets(new_prefix=prefix))
        return net

    def net6(self, prefix=48):
        n = self.next_net6
        self.next_net6 += 1
        net = ipaddress.IPv6Network(("2001:db8:%x::" % n, 48))
        if prefix > 48:
            net = next(net.subnets(new_prefix=prefix))
        return net

    def host_in(self, net):
        size = net.num_addresses
        if size <= 2:
            return str(net.network_address)
        off = self.rng.randrange(1, min(size - 1, 1 << 16))
        return str(net.network_address + off)

    def outside4(self):
        """An IPv4 address that no policy authorizes."""
        pool = ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"]
        return self.host_in(ipaddress.IPv4Network(self.rng.choice(pool)))

    def outside6(self):
        return "2001:db8:ffff:%x::%x" % (self.rng.randrange(1, 0xffff), self.rng.randrange(1, 0xffff))

    def host(self, name):
        """A host name with an A and an AAAA record; returns its addresses."""
        a = self.host_in(self.net4(28))
        aaaa = self.host_in(self.net6(64))
        self.add(name, "A", a)
        self.add(name, "AAAA", aaaa)
        return [a, aaaa]

    # --- providers

    def netblocks(self, name, n4, n6, all_="~all"):
        terms, ips = [], []
        for _ in range(n4):
            net = self.net4(self.rng.choice([24, 24, 25, 26, 27]))
            terms.append("ip4:%s" % net)
            ips.append(self.host_in(net))
        for _ in range(n6):
            net = self.net6(self.rng.choice([48, 56, 64]))
            terms.append("ip6:%s" % net)
            ips.append(self.host_in(net))
        self.txt(name, "v=spf1 %s %s" % (" ".join(terms), all_))
        self.allowed[name] = ips

    def providers(self):
        # provg: like _spf.google.com -> _netblocks{,2,3}.google.com
        for i, nb in enumerate(["_netblocks", "_netblocks2", "_netblocks3"]):
            self.netblocks("%s.provg.%s" % (nb, TLD), 10 - 3 * i, 2 + i, "~all")
        g = "_spf.provg." + TLD
        self.txt(g, "v=spf1 include:_netblocks.provg.%s include:_netblocks2.provg.%s "
                    "include:_netblocks3.provg.%s ~all" % (TLD, TLD, TLD))
        self.allowed[g] = sum((self.allowed["%s.provg.%s" % (nb, TLD)]
                               for nb in ["_netblocks", "_netblocks2", "_netblocks3"]), [])
        # provm: like spf.protection.outlook.com (networks + one include)
        self.netblocks("spfa.protection.provm." + TLD, 6, 2, "-all")
        m = "spf.protection.provm." + TLD
        terms, ips = [], []
        for _ in range(5):
            net = self.net4(self.rng.choice([24, 25]))
            terms.append("ip4:%s" % net)
            ips.append(self.host_in(net))
        net = self.net6(48)
        terms.append("ip6:%s" % net)
        ips.append(self.host_in(net))
        self.txt(m, "v=spf1 %s include:spfa.protection.provm.%s -all" % (" ".join(terms), TLD))
        self.allowed[m] = ips + self.allowed["spfa.protection.provm." + TLD]
        # ESPs made of networks only
        self.netblocks("sendgrid.provs." + TLD, 4, 0, "-all")
        self.netblocks("amazonses.prova." + TLD, 6, 1, "-all")
        self.netblocks("servers.provx." + TLD, 3, 2, "~all")
        # prove: an exists-based provider, one A record per sending IP
        e = "_spf.prove." + TLD
        self.txt(e, "v=spf1 exists:%%{i}._spf.prove.%s ~all" % TLD)
        ips = []
        for _ in range(12):
            ip = self.host_in(self.net4(28))
            self.add("%s._spf.prove.%s" % (ip, TLD), "A", "127.0.0.2")
            ips.append(ip)
        self.allowed[e] = ips
        # a reseller including provg: sender -> reseller -> provg -> netblocks
        r = "spf.reseller." + TLD
        net = self.net4(26)
        self.txt(r, "v=spf1 ip4:%s include:_spf.provg.%s ~all" % (net, TLD))
        self.allowed[r] = [self.host_in(net)] + self.allowed[g]
        # a hosting company's shared record, reached through redirect=
        h = "_spf.hoster." + TLD
        net = self.net4(24)
        ips = self.host("out.hoster." + TLD)
        self.txt(h, "v=spf1 ip4:%s a:out.hoster.%s ?all" % (net, TLD))
        self.allowed[h] = [self.host_in(net)] + ips

    # --- sender domains

    def mx_hosts(self, d, n):
        ips = []
        for i in range(n):
            mx = "mx%d.%s" % (i + 1, d)
            self.add(d, "MX", (10 * (i + 1), mx))
            ips += self.host(mx)
        return ips

    def sender_domain(self, d, kind):
        """Publishes domain d's policy of the given kind; returns
        (authorized sample IPs, whether the domain has an SPF record)."""
        R = self.rng
        own = []
        if kind == "google":
            own = self.mx_hosts(d, R.randrange(1, 3))
            rec = "v=spf1 mx include:_spf.provg.%s ~all" % TLD
            own += self.allowed["_spf.provg." + TLD]
        elif kind == "outlook":
            rec = "v=spf1 include:spf.protection.provm.%s -all" % TLD
            own = list(self.allowed["spf.protection.provm." + TLD])
            self.mx_hosts(d, 1)
        elif kind == "esp":
            net = self.net4(24)
            single = self.host_in(self.net4(24))
            rec = "v=spf1 ip4:%s ip4:%s include:sendgrid.provs.%s include:amazonses.prova.%s ~all" % (
                net, single, TLD, TLD)
            own = [self.host_in(net), single] + self.allowed["sendgrid.provs." + TLD] + \
                self.allowed["amazonses.prova." + TLD]
        elif kind == "selfhosted":
            own = self.host(d) + self.mx_hosts(d, 2)
            net6 = self.net6(48)
            rec = "v=spf1 a mx ip6:%s -all" % net6
            own.append(self.host_in(net6))
        elif kind == "redirect":
            rec = "v=spf1 redirect=_spf.hoster.%s" % TLD
            own = list(self.allowed["_spf.hoster." + TLD])
        elif kind == "mixed":
            rec = "v=spf1 include:amazonses.prova.%s include:servers.provx.%s ?all" % (TLD, TLD)
            own = self.allowed["amazonses.prova." + TLD] + self.allowed["servers.provx." + TLD]
        elif kind == "exists":
            # the domain's own list of sending IPs, looked up by reversed address
            rec = "v=spf1 exists:%{ir}.%{v}._spf.%{d} -all"
            for _ in range(6):
                ip = self.host_in(self.net4(28))
                rev = ".".join(reversed(ip.split(".")))
                self.add("%s.in-addr._spf.%s" % (rev, d), "A", "127.0.0.2")
                own.append(ip)
            for _ in range(2):
                ip6 = ipaddress.IPv6Address(self.host_in(self.net6(64)))
                nib = ".".join(reversed(ip6.exploded.replace(":", "")))
                self.add("%s.ip6._spf.%s" % (nib, d), "A", "127.0.0.2")
                own.append(str(ip6))
        elif kind == "exists_provider":
            own = self.host("out." + d)
            rec = "v=spf1 a:out.%%{d} include:_spf.prove.%s ~all" % TLD
            own += self.allowed["_spf.prove." + TLD]
        elif kind == "explained":
            net = self.net4(25)
            net6 = self.net6(56)
            rec = "v=spf1 ip4:%s ip6:%s mx -all exp=explain._spf.%%{d}" % (net, net6)
            own = [self.host_in(net), self.host_in(net6)] + self.mx_hosts(d, 1)
            self.txt("explain._spf." + d, "%{i} is not one of %{d}'s designated mail servers.")
        elif kind == "reseller":
            rec = "v=spf1 include:spf.reseller.%s -all" % TLD
            own = list(self.allowed["spf.reseller." + TLD])
        elif kind == "macro_a":
            own = self.host("mail." + d) + self.host("relay.%s" % d)
            self.add("relays." + d, "MX", (10, "relay." + d))
            rec = "v=spf1 a:mail.%{d} mx:relays.%{d2} ~all"
        elif kind == "parked":
            rec = "v=spf1 -all"
        elif kind == "neutral":
            rec = "v=spf1 ?all"
        elif kind == "none":
            self.host(d)
            self.mx_hosts(d, 1)
            return [], False
        else:
            raise ValueError(kind)
        self.txt(d, rec)
        return own, True


KINDS = ["google"] * 6 + ["outlook"] * 6 + ["esp"] * 4 + ["selfhosted"] * 4 + ["redirect"] * 3 + \
    ["mixed"] * 2 + ["exists"] * 3 + ["exists_provider"] * 2 + ["explained"] * 2 + ["reseller"] * 3 + \
    ["macro_a"] * 2 + ["parked"] * 2 + ["neutral"] * 1 + ["none"] * 2

LOCALS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
          "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
          "billing", "noreply", "info", "support", "newsletter", "bounces+1234"]


def generate(seed=3, cases_per_domain=10):
    g = Gen(seed)
    g.providers()
    rng = g.rng
    domains = []
    for i, kind in enumerate(KINDS):
        d = "%s%02d.%s" % (rng.choice(["acme", "globex", "initech", "umbrella", "hooli", "vandelay",
                                          "wayne", "stark", "tyrell", "soylent"]), i, TLD)
        own, has_spf = g.sender_domain(d, kind)
        domains.append((d, kind, own, has_spf))
    # HELO names: each sending host of a domain has "v=spf1 a -all" on its name
    cases = []
    for d, kind, own, has_spf in domains:
        helo_name = "smtp-out.%s" % d
        helo_ips = g.host(helo_name)
        g.txt(helo_name, "v=spf1 a -all")
        locals_ = rng.sample(LOCALS, 6)
        n = cases_per_domain + rng.randrange(0, 5)
        for k in range(n):
            sender = "%s@%s" % (rng.choice(locals_), d)
            helo = helo_name
            r = rng.random()
            if r < 0.08:
                # null sender: the HELO identity is checked (postmaster@HELO)
                sender = "<>"
                ip = rng.choice(helo_ips) if rng.random() < 0.6 else rng.choice([g.outside4(), g.outside6()])
            elif r < 0.60 and own:
                ip = rng.choice(own)
            elif r < 0.85:
                ip = g.outside4()
            else:
                ip = g.outside6()
            cases.append(((ip, sender, helo), "helo" if sender == "<>" else kind))
    rng.shuffle(cases)
    return g.zones, [c for c, _ in cases], [k for _, k in cases]


# policies whose evaluation looks up a name made from the client's address
EXISTS_KINDS = ("exists", "exists_provider")


if __name__ == "__main__":
    import sys
    zones, cases, _ = generate(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
    for name in sorted(zones):
        for rr in zones[name]:
            print(name, rr[0], rr[1])
    print()
    for c in cases:
        print(*c)
    print(len(zones), "names,", len(cases), "cases", file=sys.stderr)
