/*
 * pgread: the read side of the shared store on PostgreSQL (store.postgresql), behind the calls
 * of logdb_reader.h: logdb_query.c, logdb_events.c, logdb_report.c and logdb_summary.c hand a
 * reader opened by logdb_reader_open_pg to these functions, which give the same results as
 * the SQLite back end (same rows, order, filters and counts), rows carrying their instance.
 * pgread.c: connection, snapshots, filters to SQL, rows, events, known values, last id;
 * pgread_attempts.c: `veto report attempts`; pgread_report.c: `veto report summary`. Reads
 * only the tables of resolver/pg/ (queries, the rollups, device_events). Not for other modules:
 * they use logdb_reader.h.
 *
 * Filters become SQL with $n parameters only (values are never pasted into the text). Row ids:
 * the queries table has none, so a row's id is computed (PGREAD_ID_SQL): its time in ms
 * shifted left by 20 bits, a 20-bit hash of (instance, client, qname, qtype) below. Ids order
 * rows by time and, within a millisecond, by that hash; `veto log --follow` and the console's
 * tail ask for ids above the last one shown, so a row stored late with an older time (an
 * instance whose writer lagged, or spooled rows sent later) is not tailed, though `veto log`
 * shows it. Two rows with the same millisecond and hash share an id.
 *
 * Threads: a struct pgread belongs to one thread (the CLI's, or one HTTP request's); every
 * call blocks on the network, never on the event loop.
 */
#ifndef VETO_PGREAD_H
#define VETO_PGREAD_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logdb_reader.h"
#include "names.h"

struct config;

/* ms since the epoch of a timestamptz expression */
#define PGREAD_MS(x) "(floor(extract(epoch FROM " x ") * 1000)::int8)"
/* the id of a row of queries (see above) */
#define PGREAD_ID_SQL                                                                              \
	"((" PGREAD_MS(                                                                            \
	        "ts") " << 20) | (hashtext(instance || '/' || client || '/' ||"                    \
	              " coalesce(qname, '') || '/' || coalesce(qtype, ''))::int8 & 1048575))"

#define PGREAD_SQL_MAX    12288
#define PGREAD_PARAMS_MAX 128

struct pgread {
	PGconn *conn;
	unsigned snapshots; /* nested snapshot_begin calls open */
};

/* A statement being written with its parameters: once something does not fit, full stays
 * set. Parameter values point into the filter, the caller's strings or num[]. */
struct pgsql {
	char s[PGREAD_SQL_MAX];
	size_t n;
	bool full;
	const char *v[PGREAD_PARAMS_MAX];
	int nv;
	char num[PGREAD_PARAMS_MAX][64]; /* numbers and times written as text */
	char mac[LOGDB_FILTER_VALUES][18], who_mac[18];
	char dom[LOGDB_FILTER_VALUES][NAMES_MAX_TEXT + 2]; /* ".name" of each domain */
	/* its subdomains as a range of reverse(qname): ["eman.", "eman/") */
	char rlo[LOGDB_FILTER_VALUES][NAMES_MAX_TEXT + 2],
	        rhi[LOGDB_FILTER_VALUES][NAMES_MAX_TEXT + 2];
};

int pgread_open(const struct config *cfg, const char *role, struct pgread **out);
void pgread_free(struct pgread **p);
int pgread_snapshot_begin(struct pgread *p);
void pgread_snapshot_end(struct pgread *p);

/* ---- statements ---- */

void pgsql_add(struct pgsql *q, const char *text);
/* Appends "$n" for the text value v (NULL: SQL NULL), kept by pointer. */
void pgsql_param(struct pgsql *q, const char *v);
/* Appends "$n" for an integer. */
void pgsql_num(struct pgsql *q, int64_t v);
/* Appends "$n::timestamptz" for a time in ms since the epoch (UTC). */
void pgsql_time(struct pgsql *q, uint64_t ms);
/* Appends "$n" for the text[] literal of v[0..n) (each quoted). -E2BIG when it does not fit in
 * buf. */
int pgsql_array(struct pgsql *q, const char *const *v, size_t n, char *buf, size_t cap);

/* What pgread_where writes. */
enum {
	PGW_ROLLUP = 1 << 0,    /* on a rollup table: no time, domain or id condition ('' = none) */
	PGW_NO_SOURCE = 1 << 1, /* no client, mac, device, who, group, vendor condition */
};
/* " AND ..." for each filter of f on the columns of queries (or of a rollup table); the
 * statement has written its WHERE with a first condition. 0, -EINVAL (bad MAC or domain),
 * -E2BIG. */
int pgread_where(struct pgsql *q, const struct logdb_filter *f, unsigned flags);
/* " AND (qname = $n OR reverse(qname) in the range of its subdomains)" for f's domains (a
 * b-tree on reverse(qname) COLLATE "C" serves it where there is one). 0 or -EINVAL. */
int pgread_domain(struct pgsql *q, const struct logdb_filter *f);

/* Runs q (text results). 0 and *out (PQclear it), or -E2BIG, -EIO (logged). */
int pgread_exec(struct pgread *p, const struct pgsql *q, PGresult **out);

/* A text value (NULL for SQL NULL), an integer column (0 for NULL), a count (0 if not > 0). */
const char *pgread_text(const PGresult *r, int row, int col);
int64_t pgread_int(const PGresult *r, int row, int col);
uint64_t pgread_u64(const PGresult *r, int row, int col);

/* ---- the calls of logdb_reader.h ---- */
int pgread_rows(struct pgread *p, const struct logdb_filter *f, logdb_row_cb cb, void *arg);
int pgread_events(struct pgread *p, const struct logdb_filter *f, logdb_event_cb cb, void *arg);
int pgread_known(struct pgread *p, enum logdb_known kind, int (*cb)(void *arg, const char *value),
                 void *arg);
int pgread_last_id(struct pgread *p, int64_t *out);
int pgread_attempts(struct pgread *p, const struct logdb_filter *f, logdb_attempt_cb cb, void *arg);
int pgread_summary(struct pgread *p, const struct logdb_filter *f, uint32_t top,
                   logdb_summary_cb cb, void *arg);

#endif
