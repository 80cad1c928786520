/*
 * web_policy: the policy the daemon runs, read-only: asked through the control channel's
 * `policy` request (control.h, server_policy.c): when it was loaded, the last reload's result
 * and problems, the groups and the lists as compiled.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control_client.h"
#include "web_int.h"

#define POLICY_REPLY_MAX (4u << 20)
#define POLICY_FIELDS    12

/* Cuts line at tabs into f (at most POLICY_FIELDS); returns the count. */
static size_t
split(char *line, char **f)
{
	size_t n = 0;

	for (char *p = line; n < POLICY_FIELDS;) {
		f[n++] = p;
		char *tab = strchr(p, '\t');
		if (tab == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	return n;
}

static uint64_t
num(const char *s)
{
	return strtoull(s, NULL, 10);
}

static int
cells(struct http_resp *resp, char **f, size_t n, size_t first_num)
{
	int rc = http_resp_printf(resp, "<tr>");

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = web_td(resp, i >= first_num ? "num" : NULL, f[i]);
	return rc != 0 ? rc : http_resp_printf(resp, "</tr>\n");
}

/* The lines of one kind: the count, or with resp their rows. */
static int
each_line(struct http_resp *resp, char *text, const char *kind, size_t nfields, size_t first_num,
          size_t *count)
{
	size_t klen = strlen(kind);
	int rc = 0;

	*count = 0;
	for (char *p = text; rc == 0 && p != NULL && *p != '\0';) {
		char *nl = strchr(p, '\n');
		size_t len = nl != NULL ? (size_t)(nl - p) : strlen(p);
		if (len > klen && strncmp(p, kind, klen) == 0 && p[klen] == '\t') {
			(*count)++;
			if (resp != NULL) {
				char *line = strndup(p + klen + 1, len - klen - 1),
				     *f[POLICY_FIELDS];
				static char empty[1];
				if (line == NULL)
					return -ENOMEM;
				size_t nf = split(line, f);
				while (nf < nfields)
					f[nf++] = empty;
				rc = cells(resp, f, nfields, first_num);
				free(line);
			}
		}
		p = nl != NULL ? nl + 1 : NULL;
	}
	return rc;
}

/* One section: the lines of one kind as a table (columns from first_num on are numbers). */
static int
section(struct http_resp *resp, char *text, const char *kind, const char *title, const char *heads,
        size_t nfields, size_t first_num)
{
	size_t n;
	int rc = each_line(NULL, text, kind, nfields, first_num, &n);

	if (rc == 0)
		rc = http_resp_printf(resp, "<section><h2>%s</h2>\n", title);
	if (rc == 0 && n == 0)
		return http_resp_printf(resp, "<p class=\"msg note\">None.</p></section>\n");
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      "<div class=\"scroll\"><table><thead><tr>%s</tr></thead>"
		                      "<tbody>\n",
		                      heads);
	if (rc == 0)
		rc = each_line(resp, text, kind, nfields, first_num, &n);
	if (rc == 0)
		rc = http_resp_printf(resp, "</tbody></table></div></section>\n");
	return rc;
}

/* The "policy" and "reload" lines as a paragraph each. */
static int
summary(struct http_resp *resp, char *text)
{
	char t[WEB_TIME_MAX];
	int rc = 0;

	for (char *p = text; rc == 0 && p != NULL && *p != '\0';) {
		char *nl = strchr(p, '\n'), *f[POLICY_FIELDS];
		if (nl != NULL)
			*nl = '\0';
		char *line = strdup(p);
		if (line == NULL)
			return -ENOMEM;
		size_t nf = split(line, f);
		if (strcmp(f[0], "policy") == 0 && nf >= 5) {
			rc = http_resp_printf(resp, "<p>Policy in use: loaded %s UTC from <code>",
			                      web_time(num(f[1]), t));
			if (rc == 0)
				rc = http_resp_html(resp, f[2]);
			if (rc == 0)
				rc = http_resp_printf(resp,
				                      "</code>, %" PRIu64
				                      " distinct names, %" PRIu64 " KiB.</p>\n",
				                      num(f[3]), num(f[4]) / 1024);
		} else if (strcmp(f[0], "reload") == 0 && nf >= 5) {
			if (strcmp(f[2], "none") == 0)
				rc = http_resp_printf(
				        resp, "<p>Last reload: none since the start.</p>\n");
			else
				rc = http_resp_printf(
				        resp,
				        "<p>Last reload: %s UTC, <strong class=\"%s\">%s"
				        "</strong> (%" PRIu64 " ok, %" PRIu64
				        " failed since the start).</p>\n",
				        web_time(num(f[1]), t),
				        strcmp(f[2], "ok") == 0 ? "good" : "bad",
				        strcmp(f[2], "ok") == 0
				                ? "ok"
				                : "failed: the previous policy stays in use",
				        num(f[3]), num(f[4]));
		}
		free(line);
		if (nl != NULL)
			*nl = '\n';
		p = nl != NULL ? nl + 1 : NULL;
	}
	return rc;
}

int
web_page_policy(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	char *text = NULL, msg[256];
	int rc = web_page_begin(resp, req, "Policy", "/policy");

	if (rc != 0)
		return rc;
	if (w->sock[0] == '\0') {
		rc = web_msg(resp, "note", "No control channel: state_dir is not set.");
		goto done;
	}
	int qrc = control_ask_all(w->sock, "policy\n", POLICY_REPLY_MAX, WEB_CONTROL_TIMEOUT_MS,
	                          &text);
	if (qrc != 0 || strncmp(text, "ok policy ", 10) != 0) {
		snprintf(msg, sizeof(msg), "The daemon did not answer: %s",
		         qrc != 0 ? strerror(-qrc) : text);
		rc = web_msg(resp, "error", msg);
		goto done;
	}
	char *body = strchr(text, '\n');
	body = body != NULL ? body + 1 : text + strlen(text);
	rc = summary(resp, body);
	if (rc == 0)
		rc = section(resp, body, "problem", "Problems of the last reload",
		             "<th>Level</th><th>Message</th>", 2, 2);
	if (rc == 0)
		rc = section(resp, body, "group", "Groups",
		             "<th>Group</th><th>Action</th><th>Default</th><th>Block lists</th>"
		             "<th>Allow lists</th><th class=\"num\">Clients</th><th "
		             "class=\"num\">MACs</th><th class=\"num\">Vendors</th><th "
		             "class=\"num\">Hostnames</th><th class=\"num\">Devices</th><th "
		             "class=\"num\">Tags</th>",
		             11, 5);
	if (rc == 0)
		rc = section(resp, body, "list", "Lists",
		             "<th>List</th><th class=\"num\">Entries</th><th "
		             "class=\"num\">Skipped lines</th><th class=\"num\">Files</th><th "
		             "class=\"num\">URLs</th><th class=\"num\">Inline names</th>",
		             6, 1);
done:
	free(text);
	return rc != 0 ? rc : web_page_end(resp);
}
