#!/usr/bin/env python3
"""A private PostgreSQL for the benchmarks, through tests/system/pgserver.py (the system tests'
server): pg_server.py start DIR (prints the connection string), psql DIR SQL, stop DIR."""
import os
import pickle
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "system"))
from pgserver import PgServer  # noqa: E402

cmd, work = sys.argv[1], sys.argv[2]
state = os.path.join(work, "pg.pickle")
if cmd == "start":
	pg = PgServer()
	pg.start()
	with open(state, "wb") as f:
		pickle.dump(pg, f)
	print(pg.conninfo)
else:
	with open(state, "rb") as f:
		pg = pickle.load(f)
	if cmd == "psql":
		print(pg.psql(sys.argv[3]).strip())
	elif cmd == "stop":
		pg.cleanup()
