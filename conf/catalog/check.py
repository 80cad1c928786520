#!/usr/bin/python3
"""Validates conf/catalog/signatures.tsv (or the files named on the command line).

Checks: the header line, five tab-separated columns per row, strength in {rom, app, os}, the
vendor a known handset vendor for rom/app rows and a known OS family for os rows, the name a
canonical domain name (lowercase LDH labels, no trailing dot, at least two labels), a category
and a source on every row, each name listed once (a name under two vendors is reported as such).
Prints FILE:LINE: message for every problem and exits 1 if there was one; with --summary also
prints the counts by vendor and strength. Standard library only.
"""

import re
import sys
from collections import Counter
from pathlib import Path

HEADER = ["name", "vendor", "strength", "category", "source"]
VENDORS = ("Xiaomi", "Oppo", "OnePlus", "Realme", "Vivo", "Huawei", "Honor")
FAMILIES = ("Apple", "Android", "Windows", "Linux")
STRENGTHS = ("rom", "app", "os")
LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
CATEGORY = re.compile(r"^[a-z][a-z0-9-]*$")
DEFAULT = Path(__file__).resolve().parent / "signatures.tsv"


def name_problem(name):
	"""Why name is not a canonical domain name, or None."""
	if not name:
		return "empty name"
	if name != name.strip():
		return "spaces around the name"
	if name.endswith("."):
		return "trailing dot (write names without it)"
	if name != name.lower():
		return "not lowercase"
	if len(name) > 253:
		return "longer than 253 characters"
	labels = name.split(".")
	if len(labels) < 2:
		return "a single label (a top-level domain or a local host name)"
	for label in labels:
		if not LABEL.match(label):
			return f"bad label '{label}' (letters, digits and inner hyphens, 1 to 63)"
	if labels[-1].isdigit():
		return "an address, not a name"
	return None


def check(path):
	"""Returns (problems, rows) for one file; rows are (name, vendor, strength, category, source)."""
	problems = []
	rows = []
	seen = {}
	header_seen = False
	try:
		text = path.read_text(encoding="utf-8")
	except (OSError, UnicodeDecodeError) as e:
		return [f"{path}: cannot read: {e}"], rows
	if text and not text.endswith("\n"):
		problems.append(f"{path}: the last line has no newline")
	for lineno, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
		where = f"{path}:{lineno}"
		if not line.strip() or line.startswith("#"):
			continue
		if line.endswith("\r"):
			problems.append(f"{where}: carriage return (use Unix line ends)")
			line = line[:-1]
		cols = line.split("\t")
		if not header_seen:
			header_seen = True
			if cols != HEADER:
				problems.append(f"{where}: the header must be '{'<TAB>'.join(HEADER)}', got "
						f"'{'<TAB>'.join(cols)}'")
			continue
		if len(cols) != len(HEADER):
			problems.append(f"{where}: {len(cols)} columns (expected {len(HEADER)}, tab-separated)")
			continue
		name, vendor, strength, category, source = cols
		why = name_problem(name)
		if why:
			problems.append(f"{where}: name '{name}': {why}")
		if strength not in STRENGTHS:
			problems.append(f"{where}: strength '{strength}' (expected one of {', '.join(STRENGTHS)})")
		elif strength == "os" and vendor not in FAMILIES:
			problems.append(f"{where}: os row with '{vendor}' (expected an OS family: "
					f"{', '.join(FAMILIES)})")
		elif strength != "os" and vendor not in VENDORS:
			problems.append(f"{where}: {strength} row with vendor '{vendor}' (expected one of "
					f"{', '.join(VENDORS)})")
		if not CATEGORY.match(category):
			problems.append(f"{where}: category '{category}' (lowercase words joined by '-')")
		if not source.strip():
			problems.append(f"{where}: empty source")
		if name in seen:
			first_line, first_vendor = seen[name]
			if first_vendor != vendor:
				problems.append(f"{where}: '{name}' listed under two vendors: '{first_vendor}' "
						f"(line {first_line}) and '{vendor}'")
			else:
				problems.append(f"{where}: duplicate name '{name}' (first on line {first_line})")
			continue
		seen[name] = (lineno, vendor)
		rows.append((name, vendor, strength, category, source))
	if not header_seen:
		problems.append(f"{path}: no header line")
	return problems, rows


# --self-test: each bad row must be reported with its line and the expected words.
SELF_TEST = [
	("A.example.com\tXiaomi\trom\tupdate\ts", "not lowercase"),
	("x.example.com\tSamsung\tapp\tpush\ts", "vendor 'Samsung'"),
	("y.example.com\tXiaomi\tweak\tpush\ts", "strength 'weak'"),
	("q.example.com\tApple\tapp\tpush\ts", "vendor 'Apple'"),
	("w.example.com\tXiaomi\tos\tconnectivity-check\ts", "os row with 'Xiaomi'"),
	("localhost\tXiaomi\tapp\tpush\ts", "a single label"),
	("t.example.com.\tXiaomi\tapp\tpush\ts", "trailing dot"),
	("b_d.example.com\tXiaomi\tapp\tpush\ts", "bad label 'b_d'"),
	("v.example.com\tXiaomi\tapp", "3 columns"),
	("c.example.com\tXiaomi\tapp\tPush Service\ts", "category 'Push Service'"),
	("s.example.com\tXiaomi\tapp\tpush\t ", "empty source"),
	("ok.example.com\tOppo\tapp\tpush\ts", None),
	("ok.example.com\tOppo\tapp\tpush\ts", "duplicate name 'ok.example.com'"),
	("ok.example.com\tVivo\tapp\tpush\ts", "listed under two vendors: 'Oppo'"),
]


def self_test():
	import tempfile
	with tempfile.TemporaryDirectory() as d:
		path = Path(d) / "bad.tsv"
		path.write_text("# comment\n" + "\t".join(HEADER) + "\n" +
				"\n".join(row for row, _ in SELF_TEST) + "\n")
		problems, _ = check(path)
		missing = []
		for i, (row, want) in enumerate(SELF_TEST):
			at = [p for p in problems if p.startswith(f"{path}:{i + 3}:")]
			if want is None and at:
				missing.append(f"line {i + 3}: unexpected {at}")
			elif want is not None and not any(want in p for p in at):
				missing.append(f"line {i + 3}: '{want}' not reported (got {at})")
		path.write_text("name\tvendor\n")
		problems, _ = check(path)
		if not any("the header must be" in p for p in problems):
			missing.append(f"bad header not reported (got {problems})")
	for m in missing:
		print(f"self-test: {m}", file=sys.stderr)
	return 1 if missing else 0


def main(argv):
	if argv == ["--self-test"]:
		return self_test()
	summary = "--summary" in argv
	paths = [Path(a) for a in argv if a != "--summary"] or [DEFAULT]
	bad = False
	for path in paths:
		problems, rows = check(path)
		for p in problems:
			print(p, file=sys.stderr)
		bad = bad or bool(problems)
		if summary:
			counts = Counter((r[1], r[2]) for r in rows)
			for (vendor, strength), n in sorted(counts.items()):
				print(f"{vendor}\t{strength}\t{n}")
			print(f"total\t\t{len(rows)}")
	return 1 if bad else 0


if __name__ == "__main__":
	sys.exit(main(sys.argv[1:]))
