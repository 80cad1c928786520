/*
 * web_devices: the device table, one row per device as `veto devices` lists it (the saved
 * state, state_dir/devices.db, which the daemon writes every DEVICES_SAVE_MS when something
 * changed), with the vendor, group and text filters, and the forget / pin / unpin actions:
 * POST /devices/action (admin role, CSRF token checked by the listener), sent to the daemon's
 * control channel as `veto devices forget|pin|unpin` sends them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "control_client.h"
#include "devices_admin.h"
#include "devices_store.h"
#include "diag.h"
#include "identity.h"
#include "text.h"
#include "web_int.h"

struct list {
	struct http_resp *resp;
	const struct http_req *req;
	const char *vendor, *group, *text;
	bool admin;
	size_t n, shown;
	int rc;
};

static bool
contains(const char *hay, const char *needle)
{
	return hay != NULL && strcasestr(hay, needle) != NULL;
}

static bool
matches(const struct list *c, const struct devices_record *r)
{
	if (c->vendor != NULL && strcasecmp(c->vendor, r->vendor) != 0 &&
	    strcasecmp(c->vendor, r->pin_vendor) != 0)
		return false;
	if (c->group != NULL && strcmp(c->group, r->group) != 0 &&
	    strcmp(c->group, r->pin_group) != 0)
		return false;
	if (c->text == NULL)
		return true;
	char ip[64] = "";
	if (r->nips > 0)
		identify_ip_text(&r->ips[0], ip, sizeof(ip));
	return contains(r->key, c->text) || contains(identify_display_name(r), c->text) ||
	       contains(r->hostname, c->text) || contains(r->vendor, c->text) ||
	       contains(r->manufacturer, c->text) || contains(ip, c->text) ||
	       contains(r->group, c->text);
}

static int
action_form(struct list *c, const struct devices_record *r, const char *op, const char *label)
{
	struct http_resp *resp = c->resp;
	bool pin = strcmp(op, "pin") == 0;
	/* pin's fields fold away (<details>: no script) so the row stays narrow */
	int rc = pin ? http_resp_printf(resp, "<details class=\"pin\"><summary>Pin</summary>") : 0;
	if (rc == 0)
		rc = http_resp_printf(resp, "<form method=\"post\" action=\"/devices/action\" "
		                            "class=\"inline\"><input type=\"hidden\" name=\"csrf\" "
		                            "value=\"");
	if (rc == 0)
		rc = http_resp_html(resp, http_req_csrf(c->req));
	if (rc == 0)
		rc = http_resp_printf(resp, "\"><input type=\"hidden\" name=\"key\" value=\"");
	if (rc == 0)
		rc = http_resp_html(resp, r->key);
	if (rc == 0)
		rc = http_resp_printf(resp, "\"><input type=\"hidden\" name=\"op\" value=\"%s\">",
		                      op);
	if (rc == 0 && pin)
		rc = http_resp_printf(resp, "<input name=\"group\" placeholder=\"group\" "
		                            "aria-label=\"group\" class=\"short\"><input "
		                            "name=\"vendor\" placeholder=\"vendor\" "
		                            "aria-label=\"vendor\" class=\"short\">");
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      "<button type=\"submit\" class=\"%s\">%s</button></form>%s",
		                      op, label, pin ? "</details>" : "");
	return rc;
}

static int
on_record(void *arg, const struct devices_record *r)
{
	struct list *c = arg;
	struct http_resp *resp = c->resp;
	char ip[64] = "", vendor[160], ev[IDENTITY_EVIDENCE_MAX + 8], group[2 * IDENTITY_NAME_MAX];
	char t1[WEB_TIME_MAX], t2[WEB_TIME_MAX];

	c->n++;
	if (!matches(c, r))
		return 0;
	if (r->nips > 0)
		identify_ip_text(&r->ips[0], ip, sizeof(ip));
	if (r->vendor[0] != '\0')
		snprintf(vendor, sizeof(vendor), "%s (%s)", r->vendor,
		         identity_source_name(r->vendor_source));
	else
		vendor[0] = '\0';
	snprintf(group, sizeof(group), "%s%s", r->group,
	         r->pin_group[0] != '\0' ? " (pinned)" : "");
	identify_evidence_text(r, ev, sizeof(ev));
	int rc = http_resp_printf(resp, "<tr>");
	if (rc == 0)
		rc = web_td(resp, NULL, identify_display_name(r));
	if (rc == 0)
		rc = web_td(resp, "key", r->key);
	if (rc == 0)
		rc = web_td(resp, NULL, ip);
	if (rc == 0)
		rc = web_td(resp, NULL, vendor);
	if (rc == 0)
		rc = web_td(resp, NULL, ev);
	if (rc == 0)
		rc = web_td(resp, NULL, group);
	if (rc == 0)
		rc = web_td(resp, "time", web_time((uint64_t)r->first_seen * 1000, t1));
	if (rc == 0)
		rc = web_td(resp, "time", web_time((uint64_t)r->last_seen * 1000, t2));
	if (rc == 0 && c->admin) {
		rc = http_resp_printf(resp, "<td class=\"actions\">");
		if (rc == 0)
			rc = action_form(c, r, "pin", "Pin");
		if (rc == 0 && (r->pin_group[0] != '\0' || r->pin_vendor[0] != '\0'))
			rc = action_form(c, r, "unpin", "Unpin");
		if (rc == 0)
			rc = action_form(c, r, "forget", "Forget");
		if (rc == 0)
			rc = http_resp_printf(resp, "</td>");
	}
	if (rc == 0)
		rc = http_resp_printf(resp, "</tr>\n");
	c->shown++;
	c->rc = rc;
	return rc;
}

static const char *
arg_or_null(const struct http_req *req, const char *name)
{
	const char *v = http_req_arg(req, name);
	return v != NULL && v[0] != '\0' ? v : NULL;
}

static int
filter_form(struct list *c)
{
	static const char *const names[] = {"vendor", "group", "q"};
	static const char *const labels[] = {"Vendor", "Group", "Text"};
	struct http_resp *resp = c->resp;
	int rc = http_resp_printf(resp,
	                          "<form class=\"filters\" method=\"get\" action=\"/devices\">");

	for (size_t i = 0; rc == 0 && i < 3; i++) {
		const char *v = arg_or_null(c->req, names[i]);
		rc = http_resp_printf(resp, "<label>%s <input name=\"%s\" value=\"", labels[i],
		                      names[i]);
		if (rc == 0)
			rc = http_resp_html(resp, v != NULL ? v : "");
		if (rc == 0)
			rc = http_resp_printf(resp, "\"></label>");
	}
	return rc != 0 ? rc
	               : http_resp_printf(resp, "<button type=\"submit\">Apply</button> <a "
	                                        "href=\"/devices\">Clear</a></form>\n");
}

int
web_page_devices(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	struct list c = {
	        .resp = resp,
	        .req = req,
	        .vendor = arg_or_null(req, "vendor"),
	        .group = arg_or_null(req, "group"),
	        .text = arg_or_null(req, "q"),
	        .admin = http_req_role(req) >= HTTP_ROLE_ADMIN,
	};
	struct devices_store *st = NULL;
	struct config *cfg = NULL;
	char path[4096], err[512];
	int rc = web_page_begin(resp, req, "Devices", "/devices");
	const char *done = arg_or_null(req, "done"), *msg = arg_or_null(req, "msg");

	if (rc == 0 && msg != NULL)
		rc = web_msg(resp, done != NULL && strcmp(done, "ok") == 0 ? "ok" : "error", msg);
	if (rc == 0)
		rc = filter_form(&c);
	if (rc != 0)
		goto done;
	if (w->state_dir == NULL) {
		rc = web_msg(resp, "note", "No device table: state_dir is not set.");
		goto done;
	}
	snprintf(path, sizeof(path), "%s/%s", w->state_dir, DEVICES_DB_FILE);
	err[0] = '\0';
	int orc = devices_store_open(path, true, err, sizeof(err), &st);
	if (orc == -ENOENT) {
		rc = web_msg(resp, "note",
		             "No device table yet (devices: is off, or nothing seen).");
		goto done;
	}
	if (orc < 0) {
		rc = web_msg(resp, "error", err);
		goto done;
	}
	if (c.vendor != NULL || c.group != NULL) {
		struct diag d;
		diag_init(&d);
		if (w->config_path == NULL || config_load(w->config_path, &d, &cfg) != 0)
			cfg = NULL;
		diag_clear(&d);
		if ((c.vendor != NULL && devices_store_check_known(cfg, st, "--vendor", c.vendor,
		                                                   err, sizeof(err)) != 0) ||
		    (c.group != NULL && devices_store_check_known(cfg, st, "--group", c.group, err,
		                                                  sizeof(err)) != 0)) {
			http_resp_status(resp, 400);
			rc = web_msg(resp, "error", err);
			goto done;
		}
	}
	rc = http_resp_printf(resp,
	                      "<div class=\"scroll\"><table><thead><tr><th>Name</th>"
	                      "<th>Key</th><th>Address</th><th>Vendor (source)</th>"
	                      "<th>Evidence</th><th>Group</th><th>First seen</th>"
	                      "<th>Last seen</th>%s</tr></thead><tbody>\n",
	                      c.admin ? "<th>Actions</th>" : "");
	if (rc == 0) {
		rc = devices_store_load(st, on_record, &c);
		rc = rc == -EIO ? web_msg(resp, "error", "cannot read the device table") : rc;
	}
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      "</tbody></table></div>\n<p class=\"intro\">%zu of %zu "
		                      "devices. The saved device table: the daemon writes it "
		                      "within %d s of a change.</p>\n",
		                      c.shown, c.n, DEVICES_SAVE_MS / 1000);
done:
	if (rc == 0)
		rc = web_page_end(resp);
	config_free(&cfg);
	devices_store_close(&st);
	return rc;
}

/* ---- POST /devices/action ---- */

/* 303 to /devices with the outcome. */
static int
redirect(struct http_resp *resp, bool ok, const char *msg)
{
	static const char hex[] = "0123456789ABCDEF";
	char loc[1024], *w = loc;
	int n = snprintf(loc, sizeof(loc), "/devices?done=%s&msg=", ok ? "ok" : "error");

	w += n;
	for (const unsigned char *p = (const unsigned char *)msg;
	     *p != '\0' && w + 4 < loc + sizeof(loc); p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9')) {
			*w++ = (char)*p;
		} else {
			*w++ = '%';
			*w++ = hex[*p >> 4];
			*w++ = hex[*p & 15];
		}
	}
	*w = '\0';
	http_resp_redirect(resp, loc);
	return 0;
}

int
web_action_devices(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct web *w = ctx;
	struct devices_admin_req ar;
	struct config *cfg = NULL;
	struct diag d;
	char line[CONTROL_LINE_MAX + 2], reply[CONTROL_REPLY_MAX], err[512];
	const char *op = arg_or_null(req, "op"), *key = arg_or_null(req, "key");
	const char *vendor = arg_or_null(req, "vendor"), *group = arg_or_null(req, "group");

	if (!http_req_is_post(req)) {
		http_resp_status(resp, 405);
		return http_resp_printf(resp, "POST only\n");
	}
	memset(&ar, 0, sizeof(ar));
	if (op == NULL || key == NULL ||
	    (strcmp(op, "forget") != 0 && strcmp(op, "pin") != 0 && strcmp(op, "unpin") != 0)) {
		http_resp_status(resp, 400);
		return http_resp_printf(resp, "expected op=forget|pin|unpin and key\n");
	}
	ar.op = strcmp(op, "forget") == 0 ? DEVICES_ADMIN_FORGET
	        : strcmp(op, "pin") == 0  ? DEVICES_ADMIN_PIN
	                                  : DEVICES_ADMIN_UNPIN;
	if (strlen(key) >= sizeof(ar.target) ||
	    (vendor != NULL && strlen(vendor) >= sizeof(ar.vendor)) ||
	    (group != NULL && strlen(group) >= sizeof(ar.group)))
		return redirect(resp, false, "too long");
	text_copy(ar.target, sizeof(ar.target), key);
	if (ar.op == DEVICES_ADMIN_PIN) {
		text_copy(ar.vendor, sizeof(ar.vendor), vendor != NULL ? vendor : "");
		text_copy(ar.group, sizeof(ar.group), group != NULL ? group : "");
	}
	ar.uid = (uint32_t)getuid();
	if (w->sock[0] == '\0')
		return redirect(resp, false, "no control channel: state_dir is not set");
	diag_init(&d);
	int rc = w->config_path != NULL ? config_load(w->config_path, &d, &cfg) : -EINVAL;
	diag_clear(&d);
	if (rc == 0 && devices_admin_check(cfg, &ar, err, sizeof(err)) != 0) {
		config_free(&cfg);
		return redirect(resp, false, err);
	}
	config_free(&cfg);
	if (control_format(&ar, line, sizeof(line)) != 0)
		return redirect(resp, false, "request too long");
	rc = control_ask(w->sock, line, reply, sizeof(reply), WEB_CONTROL_TIMEOUT_MS);
	if (rc != 0) {
		snprintf(err, sizeof(err), "the daemon's control channel: %s (nothing changed)",
		         strerror(-rc));
		return redirect(resp, false, err);
	}
	bool ok = strncmp(reply, "ok ", 3) == 0;
	return redirect(resp, ok, ok ? reply + 3 : reply);
}
