/*
 * logdb_batch: the writer's rows wait here, as the values of their columns, until
 * LOGDB_INSERT_MANY (256) of them go into the queries table with one multi-row INSERT.
 *
 * One statement per row costs SQLite a cursor per B-tree (the table and each index) allocated
 * and freed, its registers' buffers grown again, and the start and halt of the statement,
 * about a fifth of a row's instructions; one statement for many rows pays that once. The
 * buffer is flushed before every COMMIT (logdb_commit), so a committed transaction holds all
 * its rows; on a failed transaction its waiting rows are dropped with it (logdb.c counts
 * them in tx_rows). Each inserted row is counted in the hourly rollups under its id
 * (logdb_rollup.c).
 */
#include <stdio.h>
#include <string.h>

#include "logdb_int.h"

/* OR FAIL, not the default ABORT: a statement that writes many rows and may abort half way
 * needs a statement journal (every page it touches copied first, and spilled to a temporary
 * file past 64 KiB: 140,000 pwrite calls per 100,000 rows, twice the CPU). With FAIL there is
 * nothing to undo: the values are integers that meet every constraint, and on any error the
 * writer rolls back the whole transaction. */

/* ?1..?12 per row of the multi-row statement: every column but the id */
#define BATCH_COLS (LOGDB_ROW_VALUES - 1)

int
logdb_batch_prepare(struct logdb *db)
{
	static const char head[] =
	        "INSERT OR FAIL INTO queries (ts_ms, source, name, qtype, proto, blocked,"
	        " list, rule, action, rcode, upstream, latency_us) VALUES ";
	static const char one[] = "(?,?,?,?,?,?,?,?,?,?,?,?)";
	char sql[sizeof(head) + LOGDB_INSERT_MANY * sizeof(one)];
	size_t o = sizeof(head) - 1;

	_Static_assert(sizeof(one) - 1 == 1 + 2 * BATCH_COLS, "one placeholder per column");
	memcpy(sql, head, o);
	for (int r = 0; r < LOGDB_INSERT_MANY; r++) {
		if (r > 0)
			sql[o++] = ',';
		memcpy(sql + o, one, sizeof(one) - 1);
		o += sizeof(one) - 1;
	}
	sql[o] = '\0';
	db->npend = 0;
	db->bound_valid = false;
	return sqlite3_prepare_v3(db->db, sql, (int)o + 1, SQLITE_PREPARE_PERSISTENT, &db->ins_many,
	                          NULL);
}

/* Column i of logdb_row_values may be NULL (stored as 0): the id and the dictionary ids
 * other than the source. */
static bool
nullable(int i)
{
	return i == 0 || i == 3 || i == 4 || i == 5 || (i >= 7 && i <= 11);
}

void
logdb_bind_values(sqlite3_stmt *st, int first, const sqlite3_int64 *v, int from, int to)
{
	for (int i = from; i < to; i++) {
		int p = first + i - from;
		if (v[i] == 0 && nullable(i))
			sqlite3_bind_null(st, p);
		else
			sqlite3_bind_int64(st, p, v[i]);
	}
}

/* One row by itself (the tail of a batch), counted in the rollups. */
static int
insert_one(struct logdb *db, const sqlite3_int64 *v)
{
	sqlite3_stmt *st = db->ins;

	logdb_bind_values(st, 1, v, 0, LOGDB_ROW_VALUES);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	return logdb_rollup_add(db, v, v[0] > 0 ? v[0] : sqlite3_last_insert_rowid(db->db));
}

int
logdb_batch_flush(struct logdb *db)
{
	uint32_t n = db->npend;
	int rc = SQLITE_OK;

	db->npend = 0; /* inserted, or dropped with the transaction */
	if (n == LOGDB_INSERT_MANY) {
		sqlite3_stmt *st = db->ins_many;
		/* a statement keeps its parameters from one run to the next (sqlite3_reset
		   leaves them): only the values that differ from the last batch's at the same
		   place are bound (a bind costs about 70 instructions; low-cardinality columns
		   such as the type, protocol, action or rcode mostly repeat) */
		if (!db->bound_valid) {
			for (uint32_t r = 0; r < n; r++)
				logdb_bind_values(st, 1 + (int)r * BATCH_COLS, db->pend[r], 1,
				                  LOGDB_ROW_VALUES);
		} else {
			for (uint32_t r = 0; r < n; r++) {
				const sqlite3_int64 *v = db->pend[r], *b = db->bound[r];
				for (int i = 1; i < LOGDB_ROW_VALUES; i++) {
					if (v[i] != b[i])
						logdb_bind_values(st, (int)r * BATCH_COLS + i, v, i,
						                  i + 1);
				}
			}
		}
		memcpy(db->bound, db->pend, sizeof(db->bound));
		db->bound_valid = true;
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
		/* the rows got consecutive ids (each the largest + 1), ending at the last one */
		sqlite3_int64 first = sqlite3_last_insert_rowid(db->db) - (sqlite3_int64)n + 1;
		rc = SQLITE_OK;
		for (uint32_t r = 0; r < n && rc == SQLITE_OK; r++)
			rc = logdb_rollup_add(db, db->pend[r], first + r);
		return rc;
	}
	for (uint32_t r = 0; r < n && rc == SQLITE_OK; r++)
		rc = insert_one(db, db->pend[r]);
	return rc;
}

int
logdb_batch_add(struct logdb *db, const sqlite3_int64 *v)
{
	memcpy(db->pend[db->npend++], v, sizeof(db->pend[0]));
	if (db->npend < LOGDB_INSERT_MANY)
		return SQLITE_OK;
	return logdb_batch_flush(db);
}
