/*
 * web_page: the frame every console page shares (head, navigation, messages), the filters
 * read from a request and written back as a form, and opening the stores per request.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "diag.h"
#include "output.h"
#include "text.h"
#include "web_int.h"

static const struct {
	const char *path, *label;
} nav[] = {
        {"/", "Overview"},     {"/devices", "Devices"}, {"/attempts", "Attempts"},
        {"/log", "Query log"}, {"/policy", "Policy"},
};

int
web_page_begin(struct http_resp *resp, const struct http_req *req, const char *title,
               const char *path)
{
	int rc = http_resp_printf(
	        resp,
	        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta "
	        "charset=\"utf-8\">\n<meta name=\"viewport\" "
	        "content=\"width=device-width, initial-scale=1\">\n<link rel=\"icon\" "
	        "href=\"data:,\">\n<title>");
	if (rc == 0)
		rc = http_resp_html(resp, title);
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      " - Veto</title>\n<link rel=\"stylesheet\" "
		                      "href=\"/static/veto.css\">\n<script "
		                      "src=\"/static/veto.js\" defer></script>\n</head>\n"
		                      "<body>\n<header><span class=\"brand\">Veto</span><nav>");
	for (size_t i = 0; rc == 0 && i < sizeof(nav) / sizeof(nav[0]); i++)
		rc = http_resp_printf(resp, "<a href=\"%s\"%s>%s</a>", nav[i].path,
		                      strcmp(path, nav[i].path) == 0 ? " class=\"here\"" : "",
		                      nav[i].label);
	if (rc == 0)
		rc = http_resp_printf(resp, "</nav><span class=\"user\">");
	if (rc == 0)
		rc = http_resp_html(resp, http_req_user(req));
	if (rc == 0)
		rc = http_resp_printf(resp, " (%s)</span>",
		                      http_req_role(req) >= HTTP_ROLE_ADMIN ? "admin"
		                                                            : "read-only");
	if (rc == 0 && http_req_user(req)[0] != '\0') { /* a session (not a token): log out */
		rc = http_resp_printf(resp, "<form method=\"post\" action=\"/logout\" "
		                            "class=\"inline\"><input type=\"hidden\" name=\"csrf\" "
		                            "value=\"");
		if (rc == 0)
			rc = http_resp_html(resp, http_req_csrf(req));
		if (rc == 0)
			rc = http_resp_printf(resp,
			                      "\"><button type=\"submit\" class=\"logout\">Log "
			                      "out</button></form>");
	}
	if (rc == 0)
		rc = http_resp_printf(resp, "</header>\n<main>\n<h1>");
	if (rc == 0)
		rc = http_resp_html(resp, title);
	return rc != 0 ? rc : http_resp_printf(resp, "</h1>\n");
}

int
web_page_end(struct http_resp *resp)
{
	return http_resp_printf(resp, "</main>\n<footer>Times are UTC.</footer>\n</body></html>\n");
}

int
web_msg(struct http_resp *resp, const char *kind, const char *text)
{
	int rc = http_resp_printf(resp, "<p class=\"msg %s\">", kind);
	if (rc == 0)
		rc = http_resp_html(resp, text);
	return rc != 0 ? rc : http_resp_printf(resp, "</p>\n");
}

const char *
web_time(uint64_t ts_ms, char buf[WEB_TIME_MAX])
{
	time_t t = (time_t)(ts_ms / 1000);
	struct tm tm;

	if (ts_ms == 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, WEB_TIME_MAX, "-");
	else
		strftime(buf, WEB_TIME_MAX, "%Y-%m-%d %H:%M:%S", &tm);
	return buf;
}

int
web_url_value(struct http_resp *resp, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(text);
	char *enc = malloc(3 * n + 1), *w = enc;

	if (enc == NULL)
		return -ENOMEM;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~:", *p) != NULL) {
			*w++ = (char)*p;
		} else {
			*w++ = '%';
			*w++ = hex[*p >> 4];
			*w++ = hex[*p & 15];
		}
	}
	*w = '\0';
	int rc = http_resp_html(resp, enc);
	free(enc);
	return rc;
}

int
web_td(struct http_resp *resp, const char *cls, const char *text)
{
	int rc = cls != NULL ? http_resp_printf(resp, "<td class=\"%s\">", cls)
	                     : http_resp_printf(resp, "<td>");
	if (rc == 0)
		rc = http_resp_html(resp, text != NULL && text[0] != '\0' ? text : "-");
	return rc != 0 ? rc : http_resp_printf(resp, "</td>");
}

int
web_td_u64(struct http_resp *resp, uint64_t v)
{
	return http_resp_printf(resp, "<td class=\"num\">%" PRIu64 "</td>", v);
}

/* ---- filters ---- */

static const struct {
	unsigned bit;
	const char *name, *label, *hint;
} fields[] = {
        {WEB_F_SINCE, "since", "Since", "24h, 7d, all, 2026-11-22T03:00Z"},
        {WEB_F_UNTIL, "until", "Until", "1h, ISO 8601"},
        {WEB_F_CLIENT, "client", "Client", "192.0.2.7"},
        {WEB_F_MAC, "mac", "MAC", "aa:bb:cc:dd:ee:ff"},
        {WEB_F_DEVICE, "device", "Device", "name"},
        {WEB_F_GROUP, "group", "Group", "staff"},
        {WEB_F_VENDOR, "vendor", "Vendor", "Xiaomi"},
        {WEB_F_DOMAIN, "domain", "Domain", "example.com"},
        {WEB_F_LIST, "list", "List", "xiaomi,huawei"},
        {WEB_F_ACTION, "action", "Action", "sinkhole"},
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
read_time(struct web_filter *wf, const char *name, const char *v, uint64_t *out)
{
	uint64_t t;

	if (strcmp(name, "since") == 0 && strcmp(v, "all") == 0) {
		*out = 0;
		return 0;
	}
	if (output_parse_time(v, now_ms(), &t) != 0) {
		char shown[128];
		snprintf(wf->err, sizeof(wf->err),
		         "--%s: bad time '%s' (expected 30m, 24h, 7d, 2w or ISO 8601 such as "
		         "2026-11-22T03:58:22Z)",
		         name, text_safe(shown, sizeof(shown), v));
		return 1;
	}
	*out = t > 0 ? t : 1;
	return 0;
}

int
web_filter_read(struct web_filter *wf, const struct http_req *req, unsigned mask,
                const char *default_since)
{
	memset(wf, 0, sizeof(*wf));
	logdb_filter_init(&wf->f);
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!(mask & fields[i].bit))
			continue;
		const char *v = http_req_arg(req, fields[i].name);
		if (fields[i].bit == WEB_F_SINCE && (v == NULL || v[0] == '\0'))
			v = default_since;
		if (v == NULL || v[0] == '\0')
			continue;
		if (fields[i].bit == WEB_F_SINCE || fields[i].bit == WEB_F_UNTIL) {
			uint64_t *t =
			        fields[i].bit == WEB_F_SINCE ? &wf->f.since_ms : &wf->f.until_ms;
			if (read_time(wf, fields[i].name, v, t) != 0)
				return 1;
			continue;
		}
		if (wf->ntexts == WEB_F_TEXTS)
			return -ENOMEM;
		char *copy = strdup(v);
		if (copy == NULL)
			return -ENOMEM;
		wf->texts[wf->ntexts++] = copy;
		if (review_filter_add(&wf->canon, &wf->f, fields[i].name, copy, wf->err,
		                      sizeof(wf->err)) != 0)
			return 1;
	}
	if (mask & WEB_F_BLOCKED) {
		const char *b = http_req_arg(req, "blocked"), *a = http_req_arg(req, "allowed");
		bool blocked = b != NULL && b[0] != '\0', allowed = a != NULL && a[0] != '\0';
		if (blocked && allowed) {
			snprintf(wf->err, sizeof(wf->err),
			         "--blocked and --allowed exclude each other");
			return 1;
		}
		wf->f.blocked = blocked ? 1 : allowed ? 0 : -1;
	}
	return 0;
}

void
web_filter_clear(struct web_filter *wf)
{
	for (size_t i = 0; i < wf->ntexts; i++)
		free(wf->texts[i]);
	wf->ntexts = 0;
}

int
web_filter_form(struct http_resp *resp, const struct http_req *req, unsigned mask,
                const char *action, const char *default_since)
{
	int rc = http_resp_printf(resp, "<form class=\"filters\" method=\"get\" action=\"%s\">",
	                          action);
	for (size_t i = 0; rc == 0 && i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!(mask & fields[i].bit))
			continue;
		const char *v = http_req_arg(req, fields[i].name);
		if (fields[i].bit == WEB_F_SINCE && v == NULL)
			v = default_since;
		rc = http_resp_printf(resp, "<label>%s <input name=\"%s\" placeholder=\"",
		                      fields[i].label, fields[i].name);
		if (rc == 0)
			rc = http_resp_html(resp, fields[i].hint);
		if (rc == 0)
			rc = http_resp_printf(resp, "\" value=\"");
		if (rc == 0)
			rc = http_resp_html(resp, v != NULL ? v : "");
		if (rc == 0)
			rc = http_resp_printf(resp, "\"></label>");
	}
	if (rc == 0 && (mask & WEB_F_BLOCKED)) {
		const char *b = http_req_arg(req, "blocked"), *a = http_req_arg(req, "allowed");
		rc = http_resp_printf(
		        resp,
		        "<label class=\"check\"><input type=\"checkbox\" name=\"blocked\" "
		        "value=\"1\"%s> blocked</label><label class=\"check\"><input "
		        "type=\"checkbox\" name=\"allowed\" value=\"1\"%s> "
		        "allowed</label>",
		        b != NULL && b[0] ? " checked" : "", a != NULL && a[0] ? " checked" : "");
	}
	return rc != 0 ? rc
	               : http_resp_printf(resp,
	                                  "<button type=\"submit\">Apply</button> <a "
	                                  "href=\"%s\">Clear</a></form>\n",
	                                  action);
}

int
web_filter_query(struct http_resp *resp, const struct http_req *req, unsigned mask)
{
	bool first = true;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(fields) / sizeof(fields[0]) + 2; i++) {
		bool extra = i >= sizeof(fields) / sizeof(fields[0]);
		if (extra && !(mask & WEB_F_BLOCKED))
			break;
		if (!extra && !(mask & fields[i].bit))
			continue;
		const char *name =
		        extra ? (i == sizeof(fields) / sizeof(fields[0]) ? "blocked" : "allowed")
		              : fields[i].name;
		const char *v = http_req_arg(req, name);
		if (v == NULL || v[0] == '\0')
			continue;
		rc = http_resp_printf(resp, "%s%s=", first ? "" : "&amp;", name);
		if (rc == 0)
			rc = web_url_value(resp, v);
		first = false;
	}
	return rc;
}

/* ---- the stores ---- */

bool
web_has_store(const struct web *w)
{
	return w->shared || w->database != NULL;
}

int
web_open_store(struct web *w, struct logdb_reader **out)
{
	struct config *cfg = NULL;
	struct diag d;
	int rc;

	if (!w->shared)
		return w->database != NULL ? logdb_reader_open(w->database, out) : -ENOENT;
	/* the connection settings as the daemon's file has them now (a request's thread) */
	diag_init(&d);
	rc = w->config_path != NULL ? config_load(w->config_path, &d, &cfg) : -ENOENT;
	diag_clear(&d);
	if (rc != 0)
		return rc == -ENOENT ? -ENOENT : -EIO;
	rc = cfg->store.postgresql != NULL ? logdb_reader_open_pg(cfg, "web", out) : -ENOENT;
	config_free(&cfg);
	return rc;
}

int
web_open_db(struct web *w, struct http_resp *resp, struct logdb_reader **out)
{
	if (!web_has_store(w)) {
		int rc = web_msg(resp, "note",
		                 "No query database: set log.database in the configuration to "
		                 "review queries here.");
		return rc != 0 ? rc : 1;
	}
	int rc = web_open_store(w, out);
	if (rc == -ENOENT) {
		rc = web_msg(resp, "note", "The query database does not exist yet.");
		return rc != 0 ? rc : 1;
	}
	return rc;
}

int
web_check_filter(struct web *w, struct logdb_reader *r, struct web_filter *wf)
{
	struct config *cfg = NULL;
	struct diag d;

	if (wf->f.group.v[0] == NULL && wf->f.list.v[0] == NULL && wf->f.vendor.v[0] == NULL &&
	    wf->f.device.v[0] == NULL)
		return 0;
	diag_init(&d);
	if (w->config_path != NULL && config_load(w->config_path, &d, &cfg) != 0)
		cfg = NULL; /* the store's names alone */
	diag_clear(&d);
	int rc = review_filter_check(cfg, r, &wf->f, wf->err, sizeof(wf->err));
	config_free(&cfg);
	return rc;
}
