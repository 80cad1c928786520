#!/usr/bin/python3
"""Device side-load for soak.sh: causes device events while dnsperf runs, and counts them.

Every INTERVAL seconds a new loopback client (127.1.x.y) sends one `rom` signature name of the
shipped catalog: the daemon records a first_seen event, attributes the vendor (a vendor event)
and moves the device to the soak's banned group (a group_change event). Between new clients, a
few earlier clients send an ordinary name, which the banned group refuses: those are blocked
answers the client side can count. Bounded: stops after SECONDS, every query has a timeout.

Usage: soak_devices.py PORT SECONDS CATALOG OUT_JSON [INTERVAL]
The JSON written holds the clients whose rom query was answered (each caused the three events),
the clients that never got an answer, and the answers by rcode.
"""

import json
import random
import sys
import time

import dns.message
import dns.query
import dns.rcode


def rom_names(catalog):
    """{vendor: [rom names]} from the catalog (tab-separated: name, vendor, strength, ...)."""
    out = {}
    with open(catalog, encoding="utf-8") as f:
        for line in f:
            if line.startswith("#") or not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) >= 3 and cols[2] == "rom":
                out.setdefault(cols[1], []).append(cols[0])
    return out


def ask(port, src, name):
    """One query from src with up to 3 tries; the rcode text, or None when nothing came back."""
    q = dns.message.make_query(name, "A")
    for _ in range(3):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, source=src, timeout=1.0)
            return dns.rcode.to_text(r.rcode())
        except dns.exception.Timeout:
            continue
    return None


def main():
    port, seconds, catalog, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4]
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    roms = rom_names(catalog)
    vendors = sorted(roms)
    rng = random.Random(5)
    caused, unanswered, rcodes = [], [], {}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        tick = time.monotonic()
        src = "127.1.%d.%d" % (i // 250, i % 250 + 1)
        vendor = vendors[i % len(vendors)]
        name = roms[vendor][(i // len(vendors)) % len(roms[vendor])]
        rc = ask(port, src, name)
        if rc is None:
            unanswered.append(src)
        else:
            rcodes[rc] = rcodes.get(rc, 0) + 1
            caused.append({"client": src, "vendor": vendor, "name": name, "rcode": rc})
        for old in rng.sample(caused, min(3, len(caused))):
            rc = ask(port, old["client"], "h%d.bench.example" % rng.randint(1, 1000))
            key = rc if rc is not None else "timeout"
            rcodes[key] = rcodes.get(key, 0) + 1
        i += 1
        time.sleep(max(0.0, interval - (time.monotonic() - tick)))
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"caused": caused, "unanswered": unanswered, "rcodes": rcodes}, f)


if __name__ == "__main__":
    main()
