"""The device table under pressure: one-off source addresses (spoofable on a LAN; IPv6 temporary
addresses do it over time) fill devices.max_devices. The table stays bounded in memory and on
disk, a banned handset stays caught, and the log never says a device was moved when the table
could not keep it.
"""

import sqlite3

import dns.rcode

HANDSET = "127.0.20.1"		# address-only handset, caught by a ROM query before the flood
MAX = 64
FLOOD = 600


def table_edit(work):
	def edit(cfg):
		cfg["state_dir"] = str(work / "state")
		cfg["server"]["allow"] = ["127.0.0.0/8", "::1/128"]
		cfg["devices"] = {"arp": False, "oui": False, "max_devices": MAX,
				  "signatures": {"Xiaomi": {"rom": ["connect.rom.miui.com"]}}}
		probe = cfg["groups"][0]
		assert probe["name"] == "probe"
		cfg["groups"] = [
			probe,
			{"name": "banned", "vendors": ["Xiaomi"], "default": "deny", "action": "refused"},
			{"name": "lan", "clients": ["127.0.0.0/8", "::1/128"]},
		]
	return edit


def test_table_fill_keeps_the_ban(veto_factory, tmp_path):
	work = tmp_path / "dev"
	work.mkdir()
	v = veto_factory(edit=table_edit(work))
	assert v.query("connect.rom.miui.com", src=HANDSET).rcode() == dns.rcode.NOERROR
	assert v.query("www.example.test", src=HANDSET).rcode() == dns.rcode.REFUSED
	for i in range(FLOOD):
		src = f"127.0.{21 + i // 200}.{1 + i % 200}"
		assert v.query(f"n{i}.example.test", src=src).rcode() == dns.rcode.NOERROR
	# still caught after the flood: an attributed device goes after every unattributed one
	assert v.query("www.example.test", src=HANDSET).rcode() == dns.rcode.REFUSED
	v.assert_alive()
	assert v.stop() == 0
	err = v.stderr()
	assert "not remembered" not in err, err
	db = sqlite3.connect(work / "state" / "devices.db")
	rows = db.execute("SELECT key, vendor FROM devices").fetchall()
	db.close()
	assert len(rows) <= MAX, len(rows)
	assert ("ip:" + HANDSET, "Xiaomi") in rows, rows
