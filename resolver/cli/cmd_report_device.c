/*
 * cmd_report_device: `veto report device NAME|MAC|IP`, one device's timeline: its queries and
 * its device events (first sight, vendor attribution, group changes) merged in time order.
 *
 * Events are few per device: they are read first and held; the queries are streamed and each
 * event is written before the first query that is not older than it. With a limit (the newest
 * N queries), events older than the oldest query shown are left out, so the timeline has no
 * gap: a first pass over N + 1 query ids tells whether the limit cut anything, and where.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_report_int.h"

static const char *const device_heads[] = {"TIME", "CLIENT", "MAC",  "GROUP", "NAME / EVENT",
                                           "TYPE", "ACTION", "LIST", "RCODE"};

static const struct output_col device_cols[] = {
        {.prio = 0, .min = 19},            /* TIME */
        {.prio = 3, .min = 15, .max = 39}, /* CLIENT */
        {.prio = 5, .min = 17},            /* MAC */
        {.prio = 2, .min = 5, .max = 16},  /* GROUP */
        {.prio = 0, .min = 24},            /* NAME / EVENT */
        {.prio = 4, .min = 4},             /* TYPE */
        {.prio = 0, .min = 8},             /* ACTION */
        {.prio = 1, .min = 6, .max = 16},  /* LIST */
        {.prio = 6, .min = 5},             /* RCODE */
};

static const char csv_head[] = "ts,kind,client,mac,device,group,qname,qtype,action,list,rule,"
                               "rcode,blocked,old_group,vendor,evidence\n";

/* The events held, each a copy of a logdb_event_row whose strings are owned. */
struct timeline {
	struct cmd_report_ctx *c;
	struct logdb_event_row *ev;
	size_t n, cap, next; /* next: the first event not yet written */
	/* first pass */
	uint32_t rows;
	uint64_t second_ts; /* time of the second row of the newest limit + 1: the oldest shown */
};

static char *
dup_opt(const char *s, int *err)
{
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*err = -ENOMEM;
	return d;
}

static void
event_free(struct logdb_event_row *e)
{
	free((char *)e->device);
	free((char *)e->mac);
	free((char *)e->client);
	free((char *)e->kind);
	free((char *)e->old_group);
	free((char *)e->new_group);
	free((char *)e->vendor);
	free((char *)e->evidence);
}

static int
on_event(void *arg, const struct logdb_event_row *ev)
{
	struct timeline *tl = arg;
	int err = 0;

	if (tl->n == tl->cap) {
		size_t cap = tl->cap == 0 ? 16 : 2 * tl->cap;
		struct logdb_event_row *nev = realloc(tl->ev, cap * sizeof(*nev));
		if (nev == NULL)
			return -ENOMEM;
		tl->ev = nev;
		tl->cap = cap;
	}
	struct logdb_event_row *e = &tl->ev[tl->n++];
	*e = (struct logdb_event_row){
	        .id = ev->id,
	        .ts_ms = ev->ts_ms,
	        .device = dup_opt(ev->device, &err),
	        .mac = dup_opt(ev->mac, &err),
	        .client = dup_opt(ev->client, &err),
	        .kind = dup_opt(ev->kind, &err),
	        .old_group = dup_opt(ev->old_group, &err),
	        .new_group = dup_opt(ev->new_group, &err),
	        .vendor = dup_opt(ev->vendor, &err),
	        .evidence = dup_opt(ev->evidence, &err),
	};
	return err;
}

/* "[group] random -> banned, from connect.rom.miui.com": the NAME / EVENT cell. */
static void
describe(const struct logdb_event_row *e, char *buf, size_t cap)
{
	const char *kind = e->kind != NULL ? e->kind : "event";
	const char *ev = e->evidence != NULL ? e->evidence : "-";

	if (strcmp(kind, "first_seen") == 0)
		snprintf(buf, cap, "[first seen] by %s%s%s", ev,
		         e->vendor != NULL ? ", vendor " : "", e->vendor != NULL ? e->vendor : "");
	else if (strcmp(kind, "vendor") == 0)
		snprintf(buf, cap, "[vendor] %s, from %s", e->vendor != NULL ? e->vendor : "?", ev);
	else if (strcmp(kind, "group_change") == 0)
		snprintf(buf, cap, "[group] %s -> %s, from %s",
		         e->old_group != NULL ? e->old_group : "(none)",
		         e->new_group != NULL ? e->new_group : "(none)", ev);
	else
		snprintf(buf, cap, "[%s] %s", kind, ev);
}

static void
csv_fields(FILE *f, const char *const *cols, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		fputc(',', f);
		output_csv(f, cols[i]);
	}
}

static int
write_event(struct cmd_report_ctx *c, const struct logdb_event_row *e)
{
	FILE *f = c->out;
	char t[OUTPUT_TIME_MAX];

	switch (c->format) {
	case CMD_REPORT_TABLE: {
		char what[512];
		output_format_time(e->ts_ms, true, t);
		describe(e, what, sizeof(what));
		const char *cells[] = {t,    e->client, e->mac, e->new_group, what,
		                       NULL, "event",   NULL,   NULL};
		c->first = false;
		return output_table_add(c->table, cells) == 0 ? 0 : -ENOMEM;
	}
	case CMD_REPORT_CSV: {
		const char *cols[] = {e->kind, e->client, e->mac,       e->device, e->new_group,
		                      NULL,    NULL,      NULL,         NULL,      NULL,
		                      NULL,    NULL,      e->old_group, e->vendor, e->evidence};
		output_format_csv_time(e->ts_ms, t);
		fputs(t, f);
		csv_fields(f, cols, sizeof(cols) / sizeof(cols[0]));
		fputc('\n', f);
		break;
	}
	case CMD_REPORT_JSON:
		output_format_time(e->ts_ms, false, t);
		fprintf(f, "%s{\"ts\":\"%s\"", c->first ? "[\n" : ",\n", t);
		output_json_str(f, true, "kind", e->kind);
		output_json_str(f, true, "client", e->client);
		output_json_str(f, true, "mac", e->mac);
		output_json_str(f, true, "device", e->device);
		output_json_str(f, true, "group", e->new_group);
		output_json_str(f, true, "old_group", e->old_group);
		output_json_str(f, true, "vendor", e->vendor);
		output_json_str(f, true, "evidence", e->evidence);
		fputc('}', f);
		break;
	}
	c->first = false;
	return 0;
}

static int
write_query(struct cmd_report_ctx *c, const struct logdb_row *row)
{
	FILE *f = c->out;
	char t[OUTPUT_TIME_MAX];

	switch (c->format) {
	case CMD_REPORT_TABLE: {
		output_format_time(row->ts_ms, true, t);
		const char *cells[] = {t,          row->client, row->mac,  row->group, row->qname,
		                       row->qtype, row->action, row->list, row->rcode};
		c->first = false;
		return output_table_add(c->table, cells) == 0 ? 0 : -ENOMEM;
	}
	case CMD_REPORT_CSV: {
		const char *cols[] = {"query",     row->client, row->mac,
		                      row->device, row->group,  row->qname,
		                      row->qtype,  row->action, row->list,
		                      row->rule,   row->rcode,  row->blocked ? "true" : "false",
		                      NULL,        NULL,        NULL};
		output_format_csv_time(row->ts_ms, t);
		fputs(t, f);
		csv_fields(f, cols, sizeof(cols) / sizeof(cols[0]));
		fputc('\n', f);
		break;
	}
	case CMD_REPORT_JSON:
		output_format_time(row->ts_ms, false, t);
		fprintf(f, "%s{\"ts\":\"%s\",\"kind\":\"query\"", c->first ? "[\n" : ",\n", t);
		output_json_str(f, true, "client", row->client);
		output_json_str(f, true, "mac", row->mac);
		output_json_str(f, true, "device", row->device);
		output_json_str(f, true, "group", row->group);
		output_json_str(f, true, "qname", row->qname);
		output_json_str(f, true, "qtype", row->qtype);
		output_json_str(f, true, "action", row->action);
		output_json_str(f, true, "list", row->list);
		output_json_str(f, true, "rule", row->rule);
		output_json_str(f, true, "rcode", row->rcode);
		fprintf(f, ",\"blocked\":%s}", row->blocked ? "true" : "false");
		break;
	}
	c->first = false;
	return 0;
}

/* Writes the held events up to and including time ts_ms (UINT64_MAX: all). */
static int
flush_events(struct timeline *tl, uint64_t ts_ms)
{
	while (tl->next < tl->n && tl->ev[tl->next].ts_ms <= ts_ms) {
		int rc = write_event(tl->c, &tl->ev[tl->next]);
		if (rc != 0)
			return rc;
		tl->next++;
	}
	return 0;
}

static int
on_query(void *arg, const struct logdb_row *row)
{
	struct timeline *tl = arg;
	int rc = flush_events(tl, row->ts_ms);

	return rc != 0 ? rc : write_query(tl->c, row);
}

static int
on_count(void *arg, const struct logdb_row *row)
{
	struct timeline *tl = arg;

	if (++tl->rows == 2)
		tl->second_ts = row->ts_ms;
	return 0;
}

/* With a limit: the time of the oldest query shown when the limit cuts older ones, else 0. */
static int
cut_time(struct logdb_reader *r, const struct logdb_filter *f, struct timeline *tl, uint64_t *out)
{
	struct logdb_filter pf = *f;
	int rc;

	*out = 0;
	if (f->limit == 0 || f->limit == UINT32_MAX)
		return 0;
	pf.limit = f->limit + 1; /* the newest limit + 1, oldest first */
	pf.chronological = true;
	rc = logdb_query_rows(r, &pf, on_count, tl);
	if (rc == 0 && tl->rows > f->limit)
		*out = tl->second_ts;
	return rc;
}

int
cmd_report_device(struct logdb_reader *r, struct logdb_filter *f, struct cmd_report_ctx *c)
{
	struct timeline tl = {.c = c};
	struct logdb_filter ef;
	uint64_t cut;
	int rc;

	f->chronological = true;
	rc = logdb_snapshot_begin(r); /* the cut, the events and the queries: one snapshot */
	if (rc != 0)
		return rc;
	rc = cut_time(r, f, &tl, &cut);
	if (rc != 0)
		goto cleanup;
	ef = *f;
	ef.limit = 0; /* the window bounds the events; the limit is about queries */
	if (cut > ef.since_ms)
		ef.since_ms = cut;
	rc = logdb_query_events(r, &ef, on_event, &tl);
	if (rc != 0)
		goto cleanup;
	if (c->format == CMD_REPORT_TABLE) {
		rc = output_table_new(sizeof(device_heads) / sizeof(device_heads[0]), device_heads,
		                     &c->table);
		if (rc == 0)
			rc = output_table_fit(c->table, device_cols, c->width);
		if (rc != 0)
			goto cleanup;
	} else if (c->format == CMD_REPORT_CSV) {
		fputs(csv_head, c->out);
	}
	rc = logdb_query_rows(r, f, on_query, &tl);
	if (rc == 0)
		rc = flush_events(&tl, UINT64_MAX);
	if (rc == 0 && c->first)
		fprintf(stderr,
		        "veto report device: no queries and no events of '%s' in this window "
		        "(a device name, MAC or client IP; --since all for everything)\n",
		        f->who);
	if (c->format == CMD_REPORT_TABLE) {
		if (rc == 0)
			output_table_print(c->table, c->out, NULL, true);
	} else if (c->format == CMD_REPORT_JSON) {
		fputs(c->first ? "[]\n" : "\n]\n", c->out);
	}
cleanup:
	logdb_snapshot_end(r);
	for (size_t i = 0; i < tl.n; i++)
		event_free(&tl.ev[i]);
	free(tl.ev);
	return rc;
}
