#!/usr/bin/python3
"""Regenerate Veto's shipped vendor and bypass lists from the reference data.

Usage:
    conf/lists/generate.py [--data DIR] [--out DIR]   write the lists, print a summary
    conf/lists/generate.py --check [FILE...]          only validate list files (default: all
                                                      conf/lists/*.txt), exit 1 on a problem

The reference data (vendor-domains.tsv, doh-endpoints.tsv) is read from conf/lists/data (next to
this script; its README.md says where the facts come from) unless --data is given. Standard
library only.

Per vendor it writes three tiers (see README.md next to this script):
    <vendor>.txt           telemetry, ads, web analytics: safe to block for every device
    <vendor>-strict.txt    listed as trackers or remote configuration upstream, purpose not
                           clear from the name: opt-in, the most likely source of breakage
    <vendor>-services.txt  what a handset needs to work (account, cloud, push, updates, app
                           store, connectivity checks, HMS): only for groups meant to cut a
                           handset off from its vendor
and, from doh-endpoints.tsv, doh-bypass.txt and app-httpdns.txt.
"""

import argparse
import collections
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "data")

# Output file -> (vendor values of the TSV, one-line description for the header).
VENDOR_FILES = collections.OrderedDict([
    ("xiaomi", (["Xiaomi"], "Xiaomi (MIUI / HyperOS; also Redmi and POCO handsets)")),
    ("oppo-realme", (["Oppo", "Realme"],
                     "Oppo and Realme (ColorOS / realme UI on the HeyTap infrastructure)")),
    ("oneplus", (["OnePlus"], "OnePlus (OxygenOS); modern OnePlus handsets also use the "
                 "HeyTap names of oppo-realme.txt: block both")),
    ("vivo", (["Vivo"], "Vivo (Funtouch OS / OriginOS; also iQOO)")),
    ("huawei-honor", (["Huawei", "Honor"], "Huawei (EMUI / HarmonyOS / HMS) and Honor")),
])

BLOCK_CATEGORIES = ("telemetry", "ads", "web-analytics")
STRICT_CATEGORIES = ("tracker", "config")
SERVICE_CATEGORIES = ("account-cloud", "push", "update", "appstore", "hms-core",
                      "connectivity-check")
# httpdns and vendor-root are decided below.

# Names filed under a blocking category that a critical look moves to the strict tier.
DOUBTFUL = {
    # v2fly tags it @ads, but it is Huawei's H5 page hosting CDN (web views of system apps).
    "h5hosting-drcn.dbankcdn.cn": "h5 page hosting, not only ads",
    # Next to update.avlyun.sec.miui.com (virus-definition updates of the Security app):
    # "logupdate" may be log upload or part of the update; not sure enough for tier 1.
    "logupdate.avlyun.sec.miui.com": "may belong to the security app's updates",
}

# Trackers / config names that look like a function a handset needs: moved to services.
FUNCTION_RE = re.compile(
    r"(^|[.-])(update|upgrade|sysupgrade|exappupgrade|ota|cota|icota|sau|ifsau|market|store|"
    r"appstore|installer|account|auth|authbe|login|mibi|pay|payment|push|xmpush|chat|find|"
    r"findapi|sync|timesync|time|ntp|conn\d*|conn-service|connect|connectivitycheck|wifi|"
    r"netcheck|dl|download|storedl\d*f?)([.-]|\d|$)")
# Exceptions: the regex matches but the name is not a function a handset needs.
NOT_FUNCTION = {
    "tj1.staging.pay.xiaomi.com", "tj1.stagingouter.pay.xiaomi.com", "tj1.test.pay.xiaomi.com",
    "tj1.staging.nfcpay.xiaomi.com", "tj1.payment.pt.xiaomi.com",
}
# Strict-tier names moved to services although the regex does not say so.
FUNCTION_EXTRA = {
    # The Security app: users report it carries MiPush and anti-spam updates (1Hosts #596).
    "api.sec.miui.com": "security app: mipush and anti-spam updates",
}

# Vendor HTTPDNS / service locators: those serving push, the app store or the HMS service
# locator (GRS) go to services; the plain HTTPDNS resolvers go to strict (blocking them makes
# vendor apps fall back to the network's resolver).
HTTPDNS_SERVICE_RE = re.compile(r"(^|[.-])(push|msg|grs|cdo)([.-]|$)")

SOURCES = {
    "hagezi:native.xiaomi": "HaGeZi's Xiaomi Tracker DNS Blocklist (github.com/hagezi/"
                            "dns-blocklists adblock/native.xiaomi.txt, 2026.0220.1614.22)",
    "hagezi:native.oppo-realme": "HaGeZi's OPPO & Realme Tracker list (adblock/"
                                 "native.oppo-realme.txt, 2026.0930.0450.06)",
    "hagezi:native.huawei": "HaGeZi's Huawei Tracker list (adblock/native.huawei.txt, "
                            "2026.0220.1609.03)",
    "hagezi:native.vivo": "HaGeZi's Vivo Tracker list (adblock/native.vivo.txt, "
                          "2026.0918.2208.15)",
    "hagezi:native.samsung": "HaGeZi's Samsung Tracker list (adblock/native.samsung.txt)",
    "nextdns:native-tracking": "NextDNS Native Tracking Protection (github.com/nextdns/"
                               "native-tracking-domains, domains/<vendor>)",
    "d3ward:toolz-adblock-test": "d3ward/toolz ad-block test page, OEM section "
                                 "(adblock.turtlecute.org)",
    "unknownFalleN:block": "unknownFalleN/xiaomi-dns-blocklist xiaomi_dns_block.lst "
                           "(telemetry/ads/push-looking entries only)",
    "unknownFalleN:whitelist": "unknownFalleN/xiaomi-dns-blocklist whitelist (names that "
                               "must resolve)",
    "v2fly:domain-list-community": "v2fly/domain-list-community data/<vendor> (vendor apex "
                                   "domains)",
    "v2fly:data/huawei@ads": "v2fly/domain-list-community data/huawei, entries tagged @ads",
    "Moore-2017": "C. Moore, \"OnePlus OxygenOS built-in analytics\" (2017): open.oneplus.net",
    "Xiaomi-blog-2020+Palant-2020": "Forbes 2020 Mi Browser report, Xiaomi's rebuttal and "
                                    "W. Palant (palant.info, 2020): sa.api.intl.miui.com",
    "TaiwanNCC-2022": "Taiwan NCC test of the Mi 10T 5G (Taipei Times, 8 Jan 2022)",
    "wangshub:tracking-my-phone-2019": "wangshub/tracking-my-phone: DNS capture of a "
                                       "OnePlus phone (2019)",
    "agconnect-services.json(netease-kit)": "a public agconnect-services.json (AppGallery "
                                            "Connect gateway table)",
    "blahdns:gist-2020": "BlahDNS Xiaomi black/white list gist (2020)",
    "smokedzn:xiaomi-dns-filter-README": "smokedzn/xiaomi-dns-filter README (Mi Fitness "
                                         "needs mcc.intl.inf.miui.com)",
    "code-search:captive-portal-lists": "public source code: captive-portal probe host tables",
    "code-search:oppo-framework-decompile": "public source code: ColorOS framework "
                                            "(connectivity probe hosts)",
    "code-search:oppo-sdk-endpoints": "public source code: Oppo SDK endpoint constants",
    "code-search:oxygenos-ota-urls": "public source code: OxygenOS OTA URLs",
}
ISSUE_SOURCE = "maintainer and user threads showing that blocking MiPush names breaks push"

LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def name_problem(name):
    """Why name is not a valid canonical hostname for a list, or None."""
    if name != name.lower():
        return "not lowercase"
    if name.endswith(".") or name.startswith("."):
        return "leading or trailing dot"
    if len(name) > 253:
        return "longer than 253 characters"
    labels = name.split(".")
    if len(labels) < 2:
        return "a single label (top-level domain)"
    for label in labels:
        if len(label) > 63:
            return "label longer than 63 octets"
        if not LABEL_RE.match(label):
            return "label '%s' is not letters, digits and inner hyphens" % label
    if labels[-1].isdigit():
        return "numeric top-level label"
    return None


def parents(name):
    """The proper parent names of name that have at least two labels."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def covered_by(name, names):
    """The first proper parent of name found in the set names, or None."""
    for p in parents(name):
        if p in names:
            return p
    return None


def sort_key(name):
    return list(reversed(name.split(".")))


def read_tsv(path):
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        rows = []
        for lineno, line in enumerate(f, 2):
            line = line.rstrip("\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(header):
                sys.exit("%s:%d: expected %d fields, got %d" % (path, lineno, len(header),
                                                                len(fields)))
            row = dict(zip(header, fields))
            for key in ("domain", "hostname"):
                if key in row:
                    row[key] = row[key].strip().lower().rstrip(".")
            rows.append(row)
    return rows


def describe_sources(sources):
    out = []
    for s in sorted(sources):
        if s.startswith(("hagezi:issue", "AdGuardSDNSFilter:issue", "217heidai:",
                         "unknownFalleN:issue")):
            out.append((s, ISSUE_SOURCE))
        else:
            out.append((s, SOURCES.get(s, "see conf/lists/data/README.md")))
    return out


def split_sources(value):
    return [s for s in value.split(";") if s]


def classify(row):
    """Returns (tier, reason) for one vendor-domains row: tier is block, strict, services or
    root."""
    name, cat = row["domain"], row["category"]
    if cat == "vendor-root":
        return "root", cat
    if cat in SERVICE_CATEGORIES:
        return "services", cat
    if cat == "httpdns":
        if HTTPDNS_SERVICE_RE.search(name):
            return "services", "httpdns (push / app store / HMS locator)"
        return "strict", "httpdns"
    if cat in BLOCK_CATEGORIES:
        if name in DOUBTFUL:
            return "strict", "%s, doubtful: %s" % (cat, DOUBTFUL[name])
        return "block", cat
    if cat in STRICT_CATEGORIES:
        if name in FUNCTION_EXTRA:
            return "services", "%s, looks like a function: %s" % (cat, FUNCTION_EXTRA[name])
        if name not in NOT_FUNCTION and FUNCTION_RE.search(name):
            return "services", "%s, name looks like a function" % cat
        return "strict", cat
    sys.exit("unknown category '%s' for %s" % (cat, name))


class Tier:
    def __init__(self):
        self.entries = collections.OrderedDict()  # name -> (category label, sources)
        self.dropped = []  # (name, reason)

    def add(self, name, label, sources):
        if name in self.entries:
            old_label, old_sources = self.entries[name]
            self.entries[name] = (old_label, sorted(set(old_sources) | set(sources)))
        else:
            self.entries[name] = (label, list(sources))

    def drop_covered(self, outer=None):
        """Drops entries covered by a parent in the same tier or in outer (a set)."""
        names = set(self.entries)
        for name in list(self.entries):
            p = covered_by(name, names)
            if p:
                self.dropped.append((name, "covered by %s in this file" % p))
                del self.entries[name]
            elif outer is not None and (name in outer or covered_by(name, outer)):
                q = name if name in outer else covered_by(name, outer)
                self.dropped.append((name, "already blocked by %s in the main list" % q))
                del self.entries[name]


def function_names(rows):
    """Every name some handset needs (services tier of every vendor, Samsung included)."""
    out = {}
    for row in rows:
        tier, reason = classify(row)
        if tier == "services":
            out[row["domain"]] = "%s %s" % (row["vendor"], reason.split(",")[0])
    return out


def drop_function_parents(tier, functions):
    """A block entry that equals or covers a function name would break it: drop it."""
    for name in list(tier.entries):
        hit = None
        for f in functions:
            if f == name or f.endswith("." + name):
                hit = f
                break
        if hit:
            tier.dropped.append((name, "would also block %s (%s)" % (hit, functions[hit])))
            del tier.entries[name]


def write_list(path, title, purpose, sources, counts_in, left_out, entries, notes=()):
    lines = ["# %s" % title]
    for p in purpose:
        lines.append("# %s" % p)
    lines.append("#")
    lines.append("# Generated by conf/lists/generate.py from conf/lists/data; regenerate rather "
                 "than edit.")
    lines.append("# Format: one name per line; a name covers itself and all its subdomains.")
    if counts_in:
        lines.append("# Categories included: " + ", ".join(
            "%s %d" % (c, n) for c, n in counts_in) + " (%d entries)" % len(entries))
    if left_out:
        lines.append("# Left out:")
        for item in left_out:
            lines.append("#   " + item)
    for n in notes:
        lines.append("# " + n)
    lines.append("# Sources (source column of vendor-domains.tsv / doh-endpoints.tsv):")
    for s, what in sources:
        lines.append("#   %s: %s" % (s, what))
    groups = collections.OrderedDict()
    for name, (label, _src) in entries.items():
        groups.setdefault(label, []).append(name)
    for label in sorted(groups):
        lines.append("")
        lines.append("# %s" % label)
        lines.extend(sorted(groups[label], key=sort_key))
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def count_by(entries):
    c = collections.Counter(label for label, _ in entries.values())
    return sorted(c.items())


def generate_vendors(rows, out, summary):
    functions = function_names(rows)
    for base, (vendors, desc) in VENDOR_FILES.items():
        block, strict, services = Tier(), Tier(), Tier()
        roots = []
        for row in rows:
            if row["vendor"] not in vendors:
                continue
            tier, reason = classify(row)
            src = split_sources(row["source"])
            label = row["category"]
            if tier == "root":
                roots.append(row["domain"])
            elif tier == "block":
                block.add(row["domain"], label, src)
            elif tier == "strict":
                if "doubtful" in reason:
                    label = "%s-doubtful" % label
                strict.add(row["domain"], label, src)
            else:
                if label in STRICT_CATEGORIES:
                    label = "%s-but-function" % label
                services.add(row["domain"], label, src)
        drop_function_parents(block, functions)
        drop_function_parents(strict, functions)
        block.drop_covered()
        strict.drop_covered(set(block.entries))
        services.drop_covered()

        def srcs(tier):
            s = set()
            for _label, src in tier.entries.values():
                s.update(src)
            return describe_sources(s)

        svc_counts = count_by(services.entries)
        strict_counts = count_by(strict.entries)
        left = []
        left.append("function-critical names, in %s-services.txt: %s" % (
            base, ", ".join("%s %d" % c for c in svc_counts) or "none"))
        if strict_counts:
            left.append("trackers/config of unclear purpose, in %s-strict.txt: %s" % (
                base, ", ".join("%s %d" % c for c in strict_counts)))
        left.append("vendor apex domains (%d): %s" % (len(roots), " ".join(sorted(roots))))
        left.append("  blocking an apex cuts the handset off its vendor; use a default-deny "
                    "group instead")
        for name, why in block.dropped:
            left.append("%s: %s" % (name, why))
        write_list(os.path.join(out, base + ".txt"),
                   "%s.txt: %s" % (base, desc),
                   ["Telemetry, analytics and advertising names: block for every device.",
                    "Nothing here is needed for login, cloud, push, updates, the app store or "
                    "connectivity checks."],
                   srcs(block), count_by(block.entries), left, block.entries)
        left_s = ["names already covered by %s.txt or needed by a handset:" % base]
        left_s += ["%s: %s" % d for d in strict.dropped]
        strict_path = os.path.join(out, base + "-strict.txt")
        if not strict.entries:
            if os.path.exists(strict_path):
                os.unlink(strict_path)
        else:
            write_list(strict_path,
                       "%s-strict.txt: %s, stricter tier (opt-in)" % (base, desc),
                       ["Listed as trackers or remote configuration by public blocklists, but the "
                        "name does not",
                        "say what it does; config hosts deliver ad/tracking switches and feature "
                        "flags alike.",
                        "Blocking these may break vendor apps (browser, themes, gallery, games). "
                        "Use together",
                        "with %s.txt; test on a real device first. *-doubtful: filed as "
                        "telemetry or ads" % base,
                        "upstream, but the name may also serve a function (see DOUBTFUL in "
                        "generate.py)."],
                       srcs(strict), strict_counts, left_s if strict.dropped else [],
                       strict.entries)
        write_list(os.path.join(out, base + "-services.txt"),
                   "%s-services.txt: %s, services a handset needs" % (base, desc),
                   ["Blocking these breaks login, cloud sync, push, firmware and app updates, "
                    "the app store",
                    "or the connectivity check (\"no internet\"): only for groups of banned "
                    "handsets that",
                    "are not already default-deny. Never block these for ordinary devices.",
                    "tracker-but-function: listed as a tracker upstream, but the name says "
                    "auth, time, connection",
                    "service, network check or payment: left unblocked until tested on a "
                    "device."],
                   srcs(services), svc_counts,
                   ["%s: %s" % d for d in services.dropped], services.entries)
        summary.append((base, len(block.entries), count_by(block.entries), len(strict.entries),
                        len(services.entries), len(roots), block.dropped, strict.dropped))


DOH_KINDS = {"doh", "dot", "doh+dot", "doh+dot+doq", "private-relay"}


def generate_doh(rows, out, summary):
    doh, httpdns = Tier(), Tier()
    other = collections.Counter()
    for row in rows:
        kind, name = row["kind"], row["hostname"]
        src = [s.strip() for s in row["source"].split(";") if s.strip()]
        if kind in DOH_KINDS:
            doh.add(name, "%s" % row["provider"], src)
        elif kind == "httpdns":
            httpdns.add(name, row["provider"], src)
        else:
            other[kind] += 1
    doh.drop_covered()
    httpdns.drop_covered(set(doh.entries))

    def plain_sources(tier):
        s = set()
        for _l, src in tier.entries.values():
            s.update(x for x in src if not x.startswith("covered by"))
        out = []
        for x in sorted(s):
            if x.startswith("hagezi:doh"):
                out.append((x, "hagezi/dns-blocklists wildcard/doh-onlydomains.txt "
                               "(\"Encrypted DNS Bypass\", 2024.0714.2238.12)"))
            elif "/" in x or " " in x:
                out.append((x, "provider documentation"))
            else:
                out.append((x, SOURCES.get(x, "see conf/lists/data/doh-endpoints.tsv")))
        return out

    def regroup(tier, kinds):
        e = collections.OrderedDict()
        for name, (_provider, src) in tier.entries.items():
            e[name] = (kinds[name], src)
        return e

    kinds = {}
    for row in rows:
        kinds[row["hostname"]] = {
            "private-relay": "Apple iCloud Private Relay (relay API; the two signal names are "
                             "in veto.yaml)",
            "httpdns": "app HTTPDNS",
        }.get(row["kind"], "encrypted DNS resolvers (DoH, DoT, DoQ): %s" % (
            "Google, Cloudflare, Quad9, Cisco" if row["provider"].split()[0] in
            ("Google", "Cloudflare", "Quad9", "Cisco") else "others"))

    left = ["use-application-dns.net (Firefox canary): inline list in veto.yaml, "
            "answered NXDOMAIN",
            "mask.icloud.com, mask-h2.icloud.com (iCloud Private Relay signals): inline list "
            "in veto.yaml, NXDOMAIN",
            "api.cloudflareclient.com (WARP VPN registration): a VPN, not DNS; add it if "
            "VPN bypass matters",
            "third-party app HTTPDNS: app-httpdns.txt; vendor HTTPDNS: <vendor>-strict.txt "
            "and <vendor>-services.txt"]
    left += ["%s: %s" % d for d in doh.dropped]
    write_list(os.path.join(out, "doh-bypass.txt"),
               "doh-bypass.txt: public DNS-over-HTTPS / DNS-over-TLS / DoQ resolvers",
               ["Devices and browsers use these to bypass the network's resolver. Blocking the "
                "names stops",
                "clients that look them up; also block outbound TCP/UDP 853 and, for IP "
                "literals, the",
                "resolvers' addresses at the firewall."],
               plain_sources(doh), [], left, regroup(doh, kinds),
               ["Comprehensive list: hagezi wildcard/doh-onlydomains.txt (\"Encrypted DNS "
                "Bypass\")."])
    write_list(os.path.join(out, "app-httpdns.txt"),
               "app-httpdns.txt: third-party app HTTPDNS services (opt-in)",
               ["Apps (WeChat, Meituan, Alibaba SDK users) resolve names over HTTPS through "
                "these, bypassing",
                "the network's resolver. Most apps fall back to normal DNS when blocked; "
                "test before use."],
               plain_sources(httpdns), [], ["%s: %s" % d for d in httpdns.dropped],
               regroup(httpdns, kinds))
    summary.append(("doh-bypass", len(doh.entries), [], 0, 0, 0, doh.dropped, []))
    summary.append(("app-httpdns", len(httpdns.entries), [], 0, 0, 0, httpdns.dropped, []))


def check_file(path):
    """Validates one list file; returns a list of problems ("FILE:LINE: message")."""
    problems = []
    seen = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            raw = line.rstrip("\n")
            if raw != raw.rstrip():
                problems.append("%s:%d: trailing whitespace" % (path, lineno))
            s = raw.strip()
            if not s or s.startswith("#"):
                continue
            why = name_problem(s)
            if why:
                problems.append("%s:%d: '%s': %s" % (path, lineno, s, why))
                continue
            if s in seen:
                problems.append("%s:%d: '%s': duplicate of line %d" % (path, lineno, s,
                                                                        seen[s]))
                continue
            seen[s] = lineno
    names = set(seen)
    for name, lineno in seen.items():
        p = covered_by(name, names)
        if p:
            problems.append("%s:%d: '%s': covered by '%s' (line %d)" % (path, lineno, name, p,
                                                                         seen[p]))
    if not seen:
        problems.append("%s: no entries" % path)
    return problems


def check_services_conflicts(directory):
    """No block-tier entry may equal or cover a name of a services list."""
    problems = []
    services, blocking = {}, {}
    for fn in sorted(os.listdir(directory)):
        if not fn.endswith(".txt"):
            continue
        with open(os.path.join(directory, fn), encoding="utf-8") as f:
            names = [s.strip() for s in f if s.strip() and not s.startswith("#")]
        (services if fn.endswith("-services.txt") else blocking)[fn] = names
    svc = {n: fn for fn, names in services.items() for n in names}
    for fn, names in blocking.items():
        for n in names:
            if n in svc:
                problems.append("%s: '%s' is also in %s" % (fn, n, svc[n]))
        nset = set(names)
        for s, sfn in svc.items():
            p = covered_by(s, nset)
            if p:
                problems.append("%s: '%s' would block '%s' of %s" % (fn, p, s, sfn))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--check", action="store_true", help="only validate list files")
    ap.add_argument("files", nargs="*")
    args = ap.parse_args()

    if not args.check:
        os.makedirs(args.out, exist_ok=True)
        vrows = read_tsv(os.path.join(args.data, "vendor-domains.tsv"))
        drows = read_tsv(os.path.join(args.data, "doh-endpoints.tsv"))
        for row in vrows + drows:
            n = row.get("domain") or row.get("hostname")
            why = name_problem(n)
            if why:
                sys.exit("reference data: '%s': %s" % (n, why))
        summary = []
        generate_vendors(vrows, args.out, summary)
        generate_doh(drows, args.out, summary)
        for base, n, counts, ns, nsv, nroot, dropped, sdropped in summary:
            print("%-14s %4d entries (%s)" % (base, n, ", ".join("%s %d" % c for c in counts)))
            if base in VENDOR_FILES:
                print("%14s strict %d, services %d, apex domains left out %d" % ("", ns, nsv,
                                                                                  nroot))
            for name, why in dropped + sdropped:
                print("%14s dropped %s: %s" % ("", name, why))

    files = args.files or sorted(os.path.join(args.out, f) for f in os.listdir(args.out)
                                 if f.endswith(".txt"))
    problems = []
    for f in files:
        problems += check_file(f)
    if not args.files:
        problems += check_services_conflicts(args.out)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("checked %d list files: ok" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
