/*
 * web_attempts: the `veto report attempts` view (one row per device: MAC, else address) with
 * the same filters, and /attempts.csv, the same CSV as `veto report attempts --format csv`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "web_int.h"

#define ATTEMPTS_SINCE "7d" /* as `veto report` */
#define ATTEMPTS_FILTERS                                                                           \
	(WEB_F_SINCE | WEB_F_UNTIL | WEB_F_CLIENT | WEB_F_MAC | WEB_F_DEVICE | WEB_F_GROUP |       \
	 WEB_F_VENDOR | WEB_F_LIST)

struct rows {
	struct http_resp *resp;
	size_t n;
};

static int
on_attempt(void *arg, const struct logdb_attempt *a)
{
	struct rows *c = arg;
	struct http_resp *resp = c->resp;
	char first[WEB_TIME_MAX], last[WEB_TIME_MAX], vendor[160];

	if (a->vendor != NULL && a->vendor_source != NULL)
		snprintf(vendor, sizeof(vendor), "%s (%s)", a->vendor, a->vendor_source);
	else
		snprintf(vendor, sizeof(vendor), "%s", a->vendor != NULL ? a->vendor : "-");
	int rc = http_resp_printf(resp, "<tr>");
	if (rc == 0)
		rc = web_td(resp, "key", a->key);
	if (rc == 0)
		rc = web_td(resp, NULL, a->device);
	if (rc == 0)
		rc = web_td(resp, NULL, a->client);
	if (rc == 0)
		rc = web_td(resp, NULL, vendor);
	if (rc == 0)
		rc = web_td(resp, NULL, a->evidence);
	if (rc == 0)
		rc = web_td(resp, NULL, a->group);
	if (rc == 0)
		rc = web_td_u64(resp, a->attempts);
	if (rc == 0)
		rc = web_td_u64(resp, a->names);
	if (rc == 0)
		rc = web_td_u64(resp, a->denied);
	if (rc == 0)
		rc = web_td(resp, NULL, a->top_lists);
	if (rc == 0)
		rc = web_td(resp, "time", web_time(a->first_ms, first));
	if (rc == 0)
		rc = web_td(resp, "time", web_time(a->last_ms, last));
	if (rc == 0)
		rc = http_resp_printf(resp, "</tr>\n");
	c->n++;
	return rc;
}

/* Reads and checks the filters: 0, 1 (a message was written), -errno. */
static int
open_filtered(struct web *w, const struct http_req *req, struct http_resp *resp,
              struct web_filter *wf, struct logdb_reader **r, bool html)
{
	int rc = web_filter_read(wf, req, ATTEMPTS_FILTERS, ATTEMPTS_SINCE);

	if (rc == 0)
		rc = html ? web_open_db(w, resp, r) : web_open_store(w, r);
	if (rc == 0 && (rc = web_check_filter(w, *r, wf)) != 0)
		logdb_reader_free(r);
	if (rc == 1) {
		http_resp_status(resp, 400);
		rc = html ? web_msg(resp, "error", wf->err)
		          : http_resp_printf(resp, "%s\n", wf->err);
		return rc != 0 ? rc : 1;
	}
	return rc;
}

int
web_page_attempts(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	struct web_filter wf = {0};
	struct logdb_reader *r = NULL;
	struct rows c = {.resp = resp};
	int rc = web_page_begin(resp, req, "Attempts", "/attempts");

	if (rc == 0)
		rc = http_resp_printf(resp, "<p class=\"intro\">Attempts: queries a block list "
		                            "matched. Default deny: queries the group's default "
		                            "deny refused (no list matched), counted apart.</p>\n");
	if (rc == 0)
		rc = web_filter_form(resp, req, ATTEMPTS_FILTERS, "/attempts", ATTEMPTS_SINCE);
	if (rc == 0)
		rc = open_filtered(w, req, resp, &wf, &r, true);
	if (rc == 0) {
		rc = http_resp_printf(resp, "<p><a class=\"button\" href=\"/attempts.csv?");
		if (rc == 0)
			rc = web_filter_query(resp, req, ATTEMPTS_FILTERS);
		if (rc == 0)
			rc = http_resp_printf(
			        resp, "\" download>Export CSV</a></p>\n<div class=\"scroll\">"
			              "<table><thead><tr><th>Key</th><th>Device</th>"
			              "<th>Client</th><th>Vendor (source)</th><th>Evidence</th>"
			              "<th>Group</th><th class=\"num\">Attempts</th><th "
			              "class=\"num\">Names</th><th class=\"num\">Default "
			              "deny</th><th>Top lists</th><th>First</th><th>Last</th>"
			              "</tr></thead><tbody>\n");
	}
	if (rc == 0)
		rc = logdb_report_attempts(r, &wf.f, on_attempt, &c);
	if (rc == 0)
		rc = http_resp_printf(resp, "</tbody></table></div>\n");
	if (rc == 0 && c.n == 0)
		rc = web_msg(resp, "note", "No blocked query from any device in this window.");
	if (rc == 1)
		rc = 0;
	if (rc == 0)
		rc = web_page_end(resp);
	web_filter_clear(&wf);
	logdb_reader_free(&r);
	return rc;
}

static int
on_csv_row(void *arg, const struct logdb_attempt *a)
{
	review_attempts_csv_row(arg, a);
	return 0;
}

int
web_attempts_csv(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	struct web_filter wf = {0};
	struct logdb_reader *r = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	http_resp_type(resp, "text/plain; charset=utf-8");
	if (!web_has_store(w)) {
		http_resp_status(resp, 404);
		return http_resp_printf(resp, "log.database is not set\n");
	}
	rc = open_filtered(w, req, resp, &wf, &r, false);
	if (rc != 0) {
		web_filter_clear(&wf);
		return rc == 1 ? 0 : rc;
	}
	FILE *f = open_memstream(&text, &len);
	if (f == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	review_attempts_csv_head(f);
	rc = logdb_report_attempts(r, &wf.f, on_csv_row, f);
	if (fclose(f) != 0 && rc == 0)
		rc = -ENOMEM;
	if (rc == 0) {
		http_resp_type(resp, "text/csv; charset=utf-8");
		rc = http_resp_header(resp, "Content-Disposition",
		                      "attachment; filename=\"veto-attempts.csv\"");
	}
	if (rc == 0)
		rc = http_resp_write(resp, text, len);
cleanup:
	free(text);
	web_filter_clear(&wf);
	logdb_reader_free(&r);
	return rc;
}
