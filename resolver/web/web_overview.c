/*
 * web_overview: the console's first page: queries and their blocked share over 24 hours and 7
 * days (SVG charts from the hourly counts of `veto report summary`), the names lists blocked
 * most, the devices that attempted listed telemetry most (`veto report attempts`: default-deny
 * refusals are not attempts) and the latest device events.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "web_int.h"

#define HOUR_MS 3600000ULL
#define HOURS   168 /* 7 days */
#define TOP     10

struct overview {
	uint64_t first_hour; /* start of the oldest bucket */
	struct web_bucket hours[HOURS];
	struct {
		char *name;
		uint64_t blocked;
	} top[TOP];
	size_t ntop;
	bool failed;
};

static int
on_summary(void *arg, const struct logdb_summary_row *row)
{
	struct overview *o = arg;

	if (row->section == LOGDB_SUMMARY_HOUR && row->ts_ms >= o->first_hour) {
		uint64_t i = (row->ts_ms - o->first_hour) / HOUR_MS;
		if (i < HOURS) {
			o->hours[i].total += row->total;
			o->hours[i].blocked += row->blocked;
		}
	} else if (row->section == LOGDB_SUMMARY_TOP_BLOCKED && o->ntop < TOP &&
	           row->label != NULL) {
		o->top[o->ntop].name = strdup(row->label);
		if (o->top[o->ntop].name == NULL)
			return -ENOMEM;
		o->top[o->ntop++].blocked = row->blocked;
	}
	return 0;
}

struct rows {
	struct http_resp *resp;
	size_t n;
	int rc;
};

static int
on_attempt(void *arg, const struct logdb_attempt *a)
{
	struct rows *c = arg;
	struct http_resp *resp = c->resp;
	/* no name: the table's key */
	const char *by = a->device != NULL ? "device" : a->mac != NULL ? "mac" : "client";
	int rc = http_resp_printf(resp, "<tr><td><a href=\"/attempts?since=7d&amp;%s=", by);

	if (rc == 0)
		rc = web_url_value(resp, a->device != NULL ? a->device
		                         : a->mac != NULL  ? a->mac
		                                           : a->client);
	if (rc == 0)
		rc = http_resp_printf(resp, "\">");
	if (rc == 0)
		rc = http_resp_html(resp, a->device != NULL ? a->device : a->key);
	if (rc == 0)
		rc = http_resp_printf(resp, "</a></td>");
	if (rc == 0)
		rc = web_td(resp, NULL, a->vendor);
	if (rc == 0)
		rc = web_td_u64(resp, a->attempts);
	if (rc == 0)
		rc = web_td(resp, NULL, a->top_lists);
	if (rc == 0)
		rc = http_resp_printf(resp, "</tr>\n");
	c->n++;
	c->rc = rc;
	return rc != 0 ? rc : c->n >= TOP ? 1 : 0;
}

/* events arrive oldest first: kept, then written newest first */
struct events {
	struct {
		uint64_t ts;
		char *device, *kind, *old_group, *new_group, *vendor, *evidence;
	} v[TOP];
	size_t n;
};

static char *
dup_opt(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
on_event(void *arg, const struct logdb_event_row *ev)
{
	struct events *e = arg;

	if (e->n == TOP)
		return 0;
	e->v[e->n].ts = ev->ts_ms;
	e->v[e->n].device = dup_opt(ev->device != NULL ? ev->device
	                            : ev->mac != NULL  ? ev->mac
	                                               : ev->client);
	e->v[e->n].kind = dup_opt(ev->kind);
	e->v[e->n].old_group = dup_opt(ev->old_group);
	e->v[e->n].new_group = dup_opt(ev->new_group);
	e->v[e->n].vendor = dup_opt(ev->vendor);
	e->v[e->n].evidence = dup_opt(ev->evidence);
	e->n++;
	return 0;
}

static void
events_clear(struct events *e)
{
	for (size_t i = 0; i < e->n; i++) {
		free(e->v[i].device);
		free(e->v[i].kind);
		free(e->v[i].old_group);
		free(e->v[i].new_group);
		free(e->v[i].vendor);
		free(e->v[i].evidence);
	}
	e->n = 0;
}

static int
write_events(struct http_resp *resp, const struct events *e)
{
	char t[WEB_TIME_MAX], groups[2 * 64 + 8];
	int rc = http_resp_printf(resp, "<section><h2>Latest device events</h2>\n");

	if (rc == 0 && e->n == 0)
		rc = web_msg(resp, "note", "No device event in the store.");
	if (rc == 0 && e->n == 0)
		return http_resp_printf(resp, "</section>\n");
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      "<div class=\"scroll\"><table><thead><tr><th>Time</th>"
		                      "<th>Device</th><th>Event</th><th>Group</th>"
		                      "<th>Vendor</th><th>Evidence</th></tr></thead><tbody>\n");
	for (size_t k = e->n; rc == 0 && k-- > 0;) {
		snprintf(groups, sizeof(groups), "%.64s -> %.64s",
		         e->v[k].old_group != NULL ? e->v[k].old_group : "-",
		         e->v[k].new_group != NULL ? e->v[k].new_group : "-");
		rc = http_resp_printf(resp, "<tr>");
		if (rc == 0)
			rc = web_td(resp, "time", web_time(e->v[k].ts, t));
		if (rc == 0)
			rc = web_td(resp, NULL, e->v[k].device);
		if (rc == 0)
			rc = web_td(resp, NULL, e->v[k].kind);
		if (rc == 0)
			rc = web_td(resp, NULL, groups);
		if (rc == 0)
			rc = web_td(resp, NULL, e->v[k].vendor);
		if (rc == 0)
			rc = web_td(resp, NULL, e->v[k].evidence);
		if (rc == 0)
			rc = http_resp_printf(resp, "</tr>\n");
	}
	if (rc == 0)
		rc = http_resp_printf(resp, "</tbody></table></div></section>\n");
	return rc;
}

static int
write_charts(struct http_resp *resp, const struct overview *o)
{
	struct web_bucket days[7];

	memset(days, 0, sizeof(days));
	for (size_t i = 0; i < HOURS; i++) {
		size_t d = i / 24;
		if (i % 24 == 0)
			days[d].ts_ms = o->hours[i].ts_ms;
		days[d].total += o->hours[i].total;
		days[d].blocked += o->hours[i].blocked;
	}
	int rc = http_resp_printf(resp, "<section class=\"charts\">\n");
	if (rc == 0)
		rc = web_chart(resp, "Last 24 hours, per hour", o->hours + HOURS - 24, 24, 4,
		               false);
	if (rc == 0)
		rc = web_chart(resp, "Last 7 days, per 24 hours", days, 7, 1, true);
	if (rc == 0)
		rc = http_resp_printf(resp, "</section>\n");
	return rc;
}

static int
write_top(struct http_resp *resp, const struct overview *o)
{
	int rc = http_resp_printf(resp, "<section><h2>Top blocked names (7 days)</h2>\n");

	if (rc == 0 && o->ntop == 0)
		rc = web_msg(resp, "note", "Nothing blocked by a list.");
	if (rc == 0 && o->ntop > 0)
		rc = http_resp_printf(resp, "<div class=\"scroll\"><table><thead><tr><th>Name</th>"
		                            "<th class=\"num\">Blocked</th></tr></thead><tbody>\n");
	for (size_t i = 0; rc == 0 && i < o->ntop; i++) {
		rc = http_resp_printf(resp,
		                      "<tr><td><a href=\"/log?since=7d&amp;blocked=1&amp;domain=");
		if (rc == 0)
			rc = web_url_value(resp, o->top[i].name);
		if (rc == 0)
			rc = http_resp_printf(resp, "\">");
		if (rc == 0)
			rc = http_resp_html(resp, o->top[i].name);
		if (rc == 0)
			rc = http_resp_printf(resp, "</a></td>");
		if (rc == 0)
			rc = web_td_u64(resp, o->top[i].blocked);
		if (rc == 0)
			rc = http_resp_printf(resp, "</tr>\n");
	}
	if (rc == 0 && o->ntop > 0)
		rc = http_resp_printf(resp, "</tbody></table></div>");
	if (rc == 0)
		rc = http_resp_printf(resp, "</section>\n");
	return rc;
}

int
web_page_overview(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct overview *o = calloc(1, sizeof(*o));
	struct events ev = {0};
	struct timespec now;
	int rc;

	if (o == NULL)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	uint64_t now_ms = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
	o->first_hour = (now_ms / HOUR_MS - (HOURS - 1)) * HOUR_MS;
	for (size_t i = 0; i < HOURS; i++)
		o->hours[i].ts_ms = o->first_hour + i * HOUR_MS;
	rc = web_page_begin(resp, req, "Overview", "/");
	if (rc == 0)
		rc = web_open_db(w, resp, &r);
	if (rc != 0)
		goto done;
	logdb_filter_init(&f);
	f.since_ms = o->first_hour;
	rc = logdb_snapshot_begin(r);
	if (rc == 0) {
		rc = logdb_report_summary(r, &f, TOP, on_summary, o);
		if (rc == 0)
			rc = write_charts(resp, o);
		if (rc == 0)
			rc = write_top(resp, o);
		if (rc == 0)
			rc = http_resp_printf(resp,
			                      "<section><h2>Devices that attempted listed "
			                      "telemetry most (7 days)</h2>\n<div "
			                      "class=\"scroll\"><table><thead><tr><th>Device</th>"
			                      "<th>Vendor</th><th class=\"num\">Attempts</th>"
			                      "<th>Top lists</th></tr></thead><tbody>\n");
		struct rows c = {.resp = resp};
		if (rc == 0) {
			rc = logdb_report_attempts(r, &f, on_attempt, &c);
			rc = rc == 1 ? c.rc : rc;
		}
		if (rc == 0)
			rc = http_resp_printf(resp,
			                      "</tbody></table></div>%s<p><a href=\"/attempts?"
			                      "since=7d\">All attempts</a></p></section>\n",
			                      c.n == 0
			                              ? "<p class=\"msg note\">No device attempted "
			                                "listed telemetry.</p>"
			                              : "");
		logdb_filter_init(&f);
		f.limit = TOP;
		if (rc == 0)
			rc = logdb_query_events(r, &f, on_event, &ev);
		if (rc == 0)
			rc = write_events(resp, &ev);
		logdb_snapshot_end(r);
	}
done:
	if (rc == 1)
		rc = 0; /* the page says why there is nothing */
	if (rc == 0)
		rc = web_page_end(resp);
	events_clear(&ev);
	for (size_t i = 0; i < o->ntop; i++)
		free(o->top[i].name);
	free(o);
	logdb_reader_free(&r);
	return rc;
}
