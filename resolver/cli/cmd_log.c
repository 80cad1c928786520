/*
 * cmd_log: `veto log`, searching the query database (read-only; works while the daemon runs
 * and on a copied file). Also the database and filter options shared with `veto report`.
 */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "config.h"
#include "diag.h"
#include "json.h"
#include "logdb_reader.h"
#include "output.h"

#define FOLLOW_POLL_MS 250
#define FOLLOW_BATCH   1000

enum format {
	FORMAT_TABLE,
	FORMAT_CSV,
	FORMAT_JSON,
	FORMAT_JSONL,
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: veto log [-c FILE | --db PATH] [filters] [--limit N] [--format FORMAT]\n"
	        "                [--wide] [--follow]\n"
	        "\n"
	        "searches the query store (store.postgresql of the configuration when set, else\n"
	        "log.database) and prints the matching queries, newest first. Works while the\n"
	        "daemon runs and on a copied file. The shared store adds an instance column.\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE  configuration naming log.database "
	        "(default " CMD_DEFAULT_CONFIG_HELP ")\n"
	        "  --db PATH          the database file itself\n"
	        "  --since WHEN       from WHEN: 30m, 24h, 7d, 2w ago, or ISO 8601 (2026-11-22,\n"
	        "                     2026-11-22T03:58, ...Z or +01:00; no zone = local time);\n"
	        "                     'all' for no bound (the default)\n"
	        "  --until WHEN       before WHEN\n"
	        "filters (repeat one, or give VALUE,VALUE: any of the values; different filters\n"
	        "all apply; an unknown group, list, vendor or device is an error):\n"
	        "  --client IP        queries from this client address\n"
	        "  --mac MAC          from this MAC address\n"
	        "  --device NAME      from this device (inventory name or hostname)\n"
	        "  --group NAME       of this group\n"
	        "  --vendor NAME      from devices of this vendor\n"
	        "  --domain NAME      for NAME and its subdomains\n"
	        "  --list NAME        decided by this list\n"
	        "  --blocked          blocked queries only\n"
	        "  --allowed          queries that were not blocked only\n"
	        "  --action ACTION    forward, cache, sinkhole, nxdomain, nodata, refused, "
	        "servfail,\n"
	        "                     formerr, notimp, stale\n"
	        "  --instance NAME    answered by this instance (the shared store, "
	        "store.postgresql)\n"
	        "  --limit N          at most N rows (default 100, 0 = all)\n"
	        "  --format FORMAT    table (default: aligned, local time), csv (UTC times as\n"
	        "                     2026-11-22 03:58:22.123), json (an array), jsonl (one object\n"
	        "                     per line, as in log.file)\n"
	        "  --wide             every column at full width (the table otherwise fits COLUMNS,\n"
	        "                     else the terminal, else 100 columns, leaving out and\n"
	        "                     shortening columns)\n"
	        "  -f, --follow       print new queries as they arrive, until SIGINT or SIGTERM\n"
	        "  -h, --help         show this help\n"
	        "\n"
	        "exit codes: 0 ok, 1 the database cannot be read, 2 bad usage or configuration.\n");
}

/* ---- output ---- */

struct out {
	enum format format;
	FILE *f;
	bool first; /* json: no row printed yet */
	bool header_done;
	bool shared; /* the shared store: rows have an instance (a last column) */
	struct output_table *table;
};

static const char *const table_heads[] = {"TIME", "CLIENT", "DEVICE", "MAC",    "VENDOR",
                                          "GROUP", "NAME", "TYPE",  "ACTION", "LIST",
                                          "RULE", "RCODE", "MS", "INSTANCE"};
static const bool table_right[] = {false, false, false, false, false, false, false,
                                   false, false, false, false, false, true,  false};
#define TABLE_NCOLS 13 /* without INSTANCE, the last one (the shared store only) */
/* what gives way first in a narrow terminal: the rule, latency, rcode, then vendor, MAC... */
static const struct output_col table_cols[] = {
        {.prio = 0, .min = 19},           /* TIME */
        {.prio = 3, .min = 15, .max = 39}, /* CLIENT */
        {.prio = 2, .min = 8, .max = 24}, /* DEVICE */
        {.prio = 5, .min = 17},           /* MAC */
        {.prio = 6, .min = 6, .max = 16}, /* VENDOR */
        {.prio = 4, .min = 5, .max = 16}, /* GROUP */
        {.prio = 0, .min = 16},           /* NAME */
        {.prio = 7, .min = 4},            /* TYPE */
        {.prio = 0, .min = 8},            /* ACTION */
        {.prio = 1, .min = 6, .max = 16}, /* LIST */
        {.prio = 9, .min = 8, .max = 32}, /* RULE */
        {.prio = 8, .min = 5},            /* RCODE */
        {.prio = 8, .min = 4},            /* MS */
        {.prio = 6, .min = 4, .max = 16}, /* INSTANCE */
};

static void
print_json_obj(FILE *f, const struct logdb_row *r)
{
	char ts[OUTPUT_TIME_MAX];

	output_format_time(r->ts_ms, false, ts);
	fprintf(f, "{\"ts\":\"%s\",\"client\":", ts);
	json_fput_str(f, r->client);
	fputs(",\"proto\":", f);
	json_fput_str(f, r->proto);
	fputs(",\"group\":", f);
	json_fput_str(f, r->group);
	fputs(",\"qname\":", f);
	json_fput_str(f, r->qname);
	fputs(",\"qtype\":", f);
	json_fput_str(f, r->qtype);
	fprintf(f, ",\"blocked\":%s,\"list\":", r->blocked ? "true" : "false");
	json_fput_str(f, r->list);
	fputs(",\"rule\":", f);
	json_fput_str(f, r->rule);
	fputs(",\"action\":", f);
	json_fput_str(f, r->action);
	fputs(",\"rcode\":", f);
	json_fput_str(f, r->rcode);
	fputs(",\"upstream\":", f);
	json_fput_str(f, r->upstream);
	fprintf(f, ",\"latency_us\":%u,\"mac\":", (unsigned)r->latency_us);
	json_fput_str(f, r->mac);
	fputs(",\"device\":", f);
	json_fput_str(f, r->device);
	fputs(",\"vendor\":", f);
	json_fput_str(f, r->vendor);
	fputs(",\"vendor_source\":", f);
	json_fput_str(f, r->vendor_source);
	if (r->instance != NULL) {
		fputs(",\"instance\":", f);
		json_fput_str(f, r->instance);
	}
	fputc('}', f);
}

static const char csv_header[] = "ts,client,proto,group,qname,qtype,blocked,list,rule,action,"
                                 "rcode,upstream,latency_us,mac,device,vendor,vendor_source\n";

static void
print_csv_row(FILE *f, const struct logdb_row *r, bool shared)
{
	const char *cols[] = {r->client, r->proto, r->group, r->qname, r->qtype};
	const char *cols2[] = {r->list, r->rule, r->action, r->rcode, r->upstream};
	const char *cols3[] = {r->mac, r->device, r->vendor, r->vendor_source};
	char ts[OUTPUT_TIME_MAX];

	output_format_csv_time(r->ts_ms, ts);
	fputs(ts, f);
	for (size_t i = 0; i < 5; i++) {
		fputc(',', f);
		output_csv(f, cols[i]);
	}
	fputs(r->blocked ? ",true" : ",false", f);
	for (size_t i = 0; i < 5; i++) {
		fputc(',', f);
		output_csv(f, cols2[i]);
	}
	fprintf(f, ",%u", (unsigned)r->latency_us);
	for (size_t i = 0; i < 4; i++) {
		fputc(',', f);
		output_csv(f, cols3[i]);
	}
	if (shared) {
		fputc(',', f);
		output_csv(f, r->instance);
	}
	fputc('\n', f);
}

static int
table_row(struct out *o, const struct logdb_row *r)
{
	char ts[OUTPUT_TIME_MAX], ms[24];

	output_format_time(r->ts_ms, true, ts);
	snprintf(ms, sizeof(ms), "%.1f", r->latency_us / 1000.0);
	const char *cells[] = {ts,       r->client, r->device, r->mac,  r->vendor,
	                       r->group, r->qname,  r->qtype,  r->action, r->list,
	                       r->rule,  r->rcode,  ms,        r->instance};
	return output_table_add(o->table, cells);
}

static int
emit(struct out *o, const struct logdb_row *r)
{
	switch (o->format) {
	case FORMAT_TABLE:
		return table_row(o, r) == 0 ? 0 : -ENOMEM;
	case FORMAT_CSV:
		print_csv_row(o->f, r, o->shared);
		break;
	case FORMAT_JSON:
		fputs(o->first ? "[\n" : ",\n", o->f);
		print_json_obj(o->f, r);
		break;
	case FORMAT_JSONL:
		print_json_obj(o->f, r);
		fputc('\n', o->f);
		break;
	}
	o->first = false;
	return 0;
}

/* Starts the output (headers). */
static void
out_begin(struct out *o)
{
	if (o->format == FORMAT_CSV) /* the header's newline after the shared store's column */
		fprintf(o->f, "%.*s%s\n", (int)sizeof(csv_header) - 2, csv_header,
		        o->shared ? ",instance" : "");
}

/* Ends one batch: the table is printed; json closes the array. */
static void
out_flush(struct out *o, bool final)
{
	if (o->format == FORMAT_TABLE) {
		output_table_print(o->table, o->f, table_right, !o->header_done);
		o->header_done = true;
	}
	if (final && o->format == FORMAT_JSON)
		fputs(o->first ? "[]\n" : "\n]\n", o->f);
	fflush(o->f);
}

/* --follow keeps rows to print them oldest first. */
struct keep {
	struct out *o;
	int64_t last_id;
	struct keep_row {
		struct logdb_row r;
		char *strs;
	} * v;
	size_t n, cap;
};

static char *
dup_or_null(const char *s, char **p)
{
	if (s == NULL)
		return NULL;
	size_t l = strlen(s) + 1;
	memcpy(*p, s, l);
	char *r = *p;
	*p += l;
	return r;
}

static int
on_keep_row(void *arg, const struct logdb_row *row)
{
	struct keep *k = arg;
	const char *const *fields[] = {&row->client, &row->proto,        &row->group, &row->qname,
	                               &row->qtype,  &row->list,         &row->rule,  &row->action,
	                               &row->rcode,  &row->upstream,     &row->mac,   &row->device,
	                               &row->vendor, &row->vendor_source, &row->instance};
	size_t total = 1;

	if (k->n == k->cap) {
		size_t cap = k->cap > 0 ? 2 * k->cap : 128;
		struct keep_row *nv = realloc(k->v, cap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		k->v = nv;
		k->cap = cap;
	}
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		total += *fields[i] != NULL ? strlen(*fields[i]) + 1 : 0;
	struct keep_row *kr = &k->v[k->n];
	kr->strs = malloc(total);
	if (kr->strs == NULL)
		return -ENOMEM;
	kr->r = *row;
	char *p = kr->strs;
	const char **dst[] = {&kr->r.client, &kr->r.proto,        &kr->r.group, &kr->r.qname,
	                      &kr->r.qtype,  &kr->r.list,         &kr->r.rule,  &kr->r.action,
	                      &kr->r.rcode,  &kr->r.upstream,     &kr->r.mac,   &kr->r.device,
	                      &kr->r.vendor, &kr->r.vendor_source, &kr->r.instance};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		*dst[i] = dup_or_null(*fields[i], &p);
	k->n++;
	if (row->id > k->last_id)
		k->last_id = row->id;
	return 0;
}

static int
keep_emit(struct keep *k, bool reverse)
{
	int rc = 0;

	for (size_t i = 0; i < k->n; i++) {
		struct keep_row *kr = &k->v[reverse ? k->n - 1 - i : i];
		if (rc == 0)
			rc = emit(k->o, &kr->r);
	}
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i].strs);
	k->n = 0;
	return rc;
}

static int
on_row(void *arg, const struct logdb_row *row)
{
	return emit(arg, row);
}

static volatile sig_atomic_t stop_signal;

static void
on_stop_signal(int sig)
{
	stop_signal = sig;
}

static int
follow(struct logdb_reader *r, struct logdb_filter *f, struct out *o)
{
	struct keep k = {.o = o};
	struct sigaction sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	/* the newest rows first, printed oldest first like tail -f */
	rc = logdb_query_rows(r, f, on_keep_row, &k);
	if (rc == 0 && k.last_id == 0)
		rc = logdb_last_id(r, &k.last_id);
	if (rc == 0)
		rc = keep_emit(&k, true);
	if (rc == 0)
		out_flush(o, false);
	f->oldest_first = true;
	f->limit = FOLLOW_BATCH;
	while (rc == 0 && stop_signal == 0) {
		struct timespec ts = {0, FOLLOW_POLL_MS * 1000000L};
		f->after_id = k.last_id;
		rc = logdb_query_rows(r, f, on_keep_row, &k);
		if (rc == 0)
			rc = keep_emit(&k, false);
		if (rc == 0)
			out_flush(o, false);
		if (rc == 0 && k.n == 0 && stop_signal == 0)
			nanosleep(&ts, NULL);
	}
	keep_emit(&k, false);
	free(k.v);
	return rc;
}

static int
parse_format(const char *v, enum format *out)
{
	static const char *const names[] = {"table", "csv", "json", "jsonl"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(v, names[i]) == 0) {
			*out = (enum format)i;
			return 0;
		}
	}
	return -EINVAL;
}

int
cmd_log(int argc, char **argv)
{
	const char *config = NULL, *db = NULL;
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct out o = {.format = FORMAT_TABLE, .f = stdout, .first = true};
	bool follow_mode = false, wide = false;
	int rc;

	logdb_filter_init(&f);
	f.limit = 100;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int k = cmd_log_filter_opt("veto log", argc, argv, &i, &f);
		if (k < 0)
			return CMD_EXIT_USAGE;
		if (k > 0)
			continue;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CMD_EXIT_OK;
		}
		if (strcmp(a, "-f") == 0 || strcmp(a, "--follow") == 0) {
			follow_mode = true;
			continue;
		}
		if (strcmp(a, "--wide") == 0) {
			wide = true;
			continue;
		}
		bool needs = strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
		             strcmp(a, "--db") == 0 || strcmp(a, "--limit") == 0 ||
		             strcmp(a, "--format") == 0;
		if (!needs) {
			fprintf(stderr, "veto log: unknown argument '%s'\n\n", a);
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "veto log: option '%s' needs a value\n", a);
			return CMD_EXIT_USAGE;
		}
		const char *v = argv[++i];
		if (a[1] == 'c' || strcmp(a, "--config") == 0) {
			config = v;
		} else if (strcmp(a, "--db") == 0) {
			db = v;
		} else if (strcmp(a, "--limit") == 0) {
			char *end;
			unsigned long n = strtoul(v, &end, 10);
			if (*v < '0' || *v > '9' || *end != '\0' || n > UINT32_MAX) {
				fprintf(stderr, "veto log: --limit: bad number '%s'\n", v);
				return CMD_EXIT_USAGE;
			}
			f.limit = (uint32_t)n;
		} else if (parse_format(v, &o.format) != 0) {
			fprintf(stderr,
			        "veto log: --format: unknown value '%s' (expected table, csv, "
			        "json, "
			        "jsonl)\n",
			        v);
			return CMD_EXIT_USAGE;
		}
	}
	if (follow_mode && o.format == FORMAT_JSON) {
		fprintf(stderr,
		        "veto log: --follow cannot write one JSON array: use --format jsonl\n");
		return CMD_EXIT_USAGE;
	}
	rc = cmd_log_open("veto log", config, db, &f, &r);
	if (rc != CMD_EXIT_OK)
		return rc;
	o.shared = logdb_reader_shared(r);
	if (o.format == FORMAT_TABLE) {
		rc = output_table_new(o.shared ? TABLE_NCOLS + 1 : TABLE_NCOLS, table_heads, &o.table);
		if (rc == 0)
			rc = output_table_fit(o.table, table_cols, output_term_width(wide));
		if (rc != 0) {
			logdb_reader_free(&r);
			return CMD_EXIT_RUNTIME;
		}
	}
	out_begin(&o);
	rc = follow_mode ? follow(r, &f, &o) : logdb_query_rows(r, &f, on_row, &o);
	out_flush(&o, true);
	output_table_free(&o.table);
	logdb_reader_free(&r);
	if (rc == -EINVAL) {
		fprintf(stderr, "veto log: bad filter (a --domain or --mac that cannot be read)\n");
		return CMD_EXIT_USAGE;
	}
	return rc == 0 ? CMD_EXIT_OK : CMD_EXIT_RUNTIME;
}
