/*
 * web_log: the query log with the `veto log` filters, newest first, a page of rows at a time
 * (the next page: rows older than the last one shown), and /log.json?after=ID, the rows newer
 * than ID (oldest first) that veto.js polls every 2 s for the live tail. Without script the
 * page has a link to reload it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "web_int.h"

#define LOG_FILTERS                                                                                \
	(WEB_F_SINCE | WEB_F_UNTIL | WEB_F_CLIENT | WEB_F_MAC | WEB_F_DEVICE | WEB_F_GROUP |       \
	 WEB_F_VENDOR | WEB_F_DOMAIN | WEB_F_LIST | WEB_F_ACTION | WEB_F_BLOCKED)
#define LOG_PAGE     100
#define LOG_TAIL_MAX 200 /* rows in one /log.json answer */

struct page {
	struct http_resp *resp;
	int64_t before; /* show rows with a smaller id only (0: any) */
	int64_t first_id, last_id;
	uint64_t last_ts;
	size_t n;
	int rc;
};

static int
write_row(struct http_resp *resp, const struct logdb_row *r)
{
	char t[WEB_TIME_MAX], who[160];
	const char *rule = r->list != NULL ? r->list : r->blocked ? "default deny" : NULL;

	if (r->device != NULL)
		snprintf(who, sizeof(who), "%s (%s)", r->device,
		         r->client != NULL ? r->client : "-");
	else
		snprintf(who, sizeof(who), "%s", r->client != NULL ? r->client : "-");
	int rc = http_resp_printf(resp, "<tr%s>", r->blocked ? " class=\"blocked\"" : "");
	if (rc == 0)
		rc = web_td(resp, "time", web_time(r->ts_ms, t));
	if (rc == 0)
		rc = web_td(resp, NULL, who);
	if (rc == 0)
		rc = web_td(resp, NULL, r->mac);
	if (rc == 0)
		rc = web_td(resp, NULL, r->vendor);
	if (rc == 0)
		rc = web_td(resp, NULL, r->group);
	if (rc == 0)
		rc = web_td(resp, "name", r->qname);
	if (rc == 0)
		rc = web_td(resp, NULL, r->qtype);
	if (rc == 0)
		rc = web_td(resp, NULL, r->action);
	if (rc == 0)
		rc = web_td(resp, NULL, rule);
	if (rc == 0)
		rc = web_td(resp, NULL, r->rcode);
	if (rc == 0)
		rc = http_resp_printf(resp, "</tr>\n");
	return rc;
}

static int
on_row(void *arg, const struct logdb_row *r)
{
	struct page *p = arg;

	if (p->before > 0 && r->id >= p->before)
		return 0; /* shown on the previous page (same millisecond) */
	if (p->n == 0)
		p->first_id = r->id;
	p->rc = write_row(p->resp, r);
	p->last_id = r->id;
	p->last_ts = r->ts_ms;
	p->n++;
	return p->rc != 0 ? p->rc : p->n >= LOG_PAGE ? 1 : 0;
}

static int64_t
arg_int(const struct http_req *req, const char *name)
{
	const char *v = http_req_arg(req, name);
	char *end;

	if (v == NULL || v[0] == '\0')
		return 0;
	long long n = strtoll(v, &end, 10);
	return *end == '\0' && n > 0 ? (int64_t)n : 0;
}

int
web_page_log(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	struct web_filter wf = {0};
	struct logdb_reader *r = NULL;
	struct page p = {.resp = resp, .before = arg_int(req, "before")};
	int rc = web_page_begin(resp, req, "Query log", "/log");

	if (rc == 0)
		rc = web_filter_form(resp, req, LOG_FILTERS, "/log", "24h");
	if (rc == 0 && (rc = web_filter_read(&wf, req, LOG_FILTERS, "24h")) == 0)
		rc = web_open_db(w, resp, &r);
	if (rc == 0)
		rc = web_check_filter(w, r, &wf);
	if (rc == 1 && wf.err[0] != '\0') {
		http_resp_status(resp, 400);
		rc = web_msg(resp, "error", wf.err);
		if (rc == 0)
			rc = 1;
	}
	/* the next pages: older than the last row shown, by its time then its id */
	uint64_t until = (uint64_t)arg_int(req, "before_ts");
	if (rc == 0 && p.before > 0 && until > 0 &&
	    (wf.f.until_ms == 0 || until + 1 < wf.f.until_ms))
		wf.f.until_ms = until + 1;
	/* a page, and the rows of the previous page that share its last millisecond */
	wf.f.limit = 2 * LOG_PAGE;
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      "<div class=\"scroll\"><table id=\"log\"><thead><tr>"
		                      "<th>Time</th><th>Client</th><th>MAC</th><th>Vendor</th>"
		                      "<th>Group</th><th>Name</th><th>Type</th><th>Action</th>"
		                      "<th>List</th><th>Rcode</th></tr></thead><tbody>\n");
	if (rc == 0) {
		rc = logdb_query_rows(r, &wf.f, on_row, &p);
		rc = rc == 1 ? p.rc : rc;
	}
	if (rc == 0)
		rc = http_resp_printf(resp, "</tbody></table></div>\n");
	if (rc == 0 && p.n == 0)
		rc = web_msg(resp, "note", "No query matches.");
	if (rc == 0) {
		/* the live tail: on the first page only; veto.js reads these attributes */
		if (p.before == 0) {
			if (p.n == 0 && logdb_last_id(r, &p.first_id) != 0)
				p.first_id = 0;
			rc = http_resp_printf(resp,
			                      "<p class=\"tail\" id=\"tail\" data-after=\"%" PRId64
			                      "\" data-query=\"",
			                      p.first_id);
			if (rc == 0)
				rc = web_filter_query(resp, req, LOG_FILTERS);
			if (rc == 0)
				rc = http_resp_printf(resp, "\"><a href=\"/log?");
			if (rc == 0)
				rc = web_filter_query(resp, req, LOG_FILTERS);
			if (rc == 0)
				rc = http_resp_printf(resp, "\">Newest</a> <span id=\"tail-state\">"
				                            "</span></p>\n");
		}
		if (rc == 0 && p.n == LOG_PAGE) {
			rc = http_resp_printf(resp,
			                      "<p><a class=\"button\" id=\"older\" href=\"/log?");
			if (rc == 0)
				rc = web_filter_query(resp, req, LOG_FILTERS);
			if (rc == 0)
				rc = http_resp_printf(resp,
				                      "&amp;before=%" PRId64
				                      "&amp;before_ts=%" PRIu64
				                      "\">Older</a></p>\n",
				                      p.last_id, p.last_ts);
		}
	}
	if (rc == 1)
		rc = 0;
	if (rc == 0)
		rc = web_page_end(resp);
	web_filter_clear(&wf);
	logdb_reader_free(&r);
	return rc;
}

/* ---- /log.json ---- */

static void
json_member(FILE *f, const char *key, const char *v)
{
	fprintf(f, ",\"%s\":", key);
	json_fput_str(f, v);
}

static int
on_json_row(void *arg, const struct logdb_row *r)
{
	FILE *f = arg;
	char t[WEB_TIME_MAX];
	long pos = ftell(f);

	fprintf(f, "%s{\"id\":%" PRId64, pos > 1 ? ",\n" : "", r->id);
	json_member(f, "time", web_time(r->ts_ms, t));
	json_member(f, "client", r->client);
	json_member(f, "device", r->device);
	json_member(f, "mac", r->mac);
	json_member(f, "vendor", r->vendor);
	json_member(f, "group", r->group);
	json_member(f, "qname", r->qname);
	json_member(f, "qtype", r->qtype);
	json_member(f, "action", r->action);
	json_member(f, "list", r->list != NULL ? r->list : r->blocked ? "default deny" : NULL);
	json_member(f, "rcode", r->rcode);
	fprintf(f, ",\"blocked\":%s}", r->blocked ? "true" : "false");
	return 0;
}

int
web_log_json(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	struct web_filter wf = {0};
	struct logdb_reader *r = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	http_resp_type(resp, "application/json");
	if (!web_has_store(w))
		return http_resp_printf(resp, "[]\n");
	rc = web_filter_read(&wf, req, LOG_FILTERS, "all");
	if (rc == 0)
		rc = web_open_store(w, &r);
	if (rc == -ENOENT) {
		web_filter_clear(&wf);
		return http_resp_printf(resp, "[]\n");
	}
	if (rc == 1) {
		http_resp_status(resp, 400);
		rc = http_resp_printf(resp, "{\"error\":");
		if (rc == 0) {
			FILE *f = open_memstream(&text, &len);
			if (f == NULL) {
				rc = -ENOMEM;
			} else {
				json_fput_str(f, wf.err);
				fclose(f);
				rc = http_resp_write(resp, text, len);
			}
		}
		if (rc == 0)
			rc = http_resp_printf(resp, "}\n");
		goto cleanup;
	}
	wf.f.after_id = arg_int(req, "after");
	wf.f.oldest_first = true;
	wf.f.limit = LOG_TAIL_MAX;
	FILE *f = rc == 0 ? open_memstream(&text, &len) : NULL;
	if (rc == 0 && f == NULL)
		rc = -ENOMEM;
	if (rc == 0) {
		fputs("[", f);
		rc = logdb_query_rows(r, &wf.f, on_json_row, f);
		fputs("]\n", f);
		if (fclose(f) != 0 && rc == 0)
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = http_resp_write(resp, text, len);
cleanup:
	free(text);
	web_filter_clear(&wf);
	logdb_reader_free(&r);
	return rc;
}
