/*
 * web: the console's routes and their shared state (web.h).
 */
#include "web.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "web_int.h"

static char *
dup_or_null(const char *s, bool *failed)
{
	char *d = s != NULL ? strdup(s) : NULL;
	if (s != NULL && d == NULL)
		*failed = true;
	return d;
}

int
web_new(const struct web_options *o, struct web **out)
{
	struct web *w = calloc(1, sizeof(*w));
	bool failed = false;

	if (w == NULL)
		return -ENOMEM;
	w->config_path = dup_or_null(o->config_path, &failed);
	w->database = dup_or_null(o->database, &failed);
	w->state_dir = dup_or_null(o->state_dir, &failed);
	w->shared = o->shared;
	if (failed) {
		web_free(&w);
		return -ENOMEM;
	}
	if (o->state_dir != NULL && control_path(o->state_dir, w->sock, sizeof(w->sock)) != 0) {
		web_free(&w);
		return -ENAMETOOLONG;
	}
	const struct http_route routes[] = {
	        {"/", HTTP_ROLE_READ, false, web_page_overview, w},
	        {"/devices", HTTP_ROLE_READ, false, web_page_devices, w},
	        {"/devices/action", HTTP_ROLE_ADMIN, true, web_action_devices, w},
	        {"/attempts", HTTP_ROLE_READ, false, web_page_attempts, w},
	        {"/attempts.csv", HTTP_ROLE_READ, false, web_attempts_csv, w},
	        {"/log", HTTP_ROLE_READ, false, web_page_log, w},
	        {"/log.json", HTTP_ROLE_READ, false, web_log_json, w},
	        {"/policy", HTTP_ROLE_READ, false, web_page_policy, w},
	        {"/static/veto.css", HTTP_ROLE_NONE, false, web_static_css, w},
	        {"/static/veto.js", HTTP_ROLE_NONE, false, web_static_js, w},
	};
	_Static_assert(sizeof(routes) / sizeof(routes[0]) == WEB_NROUTES, "WEB_NROUTES");
	_Static_assert(WEB_NROUTES <= WEB_ROUTES_MAX, "WEB_ROUTES_MAX");
	memcpy(w->routes, routes, sizeof(routes));
	w->nroutes = WEB_NROUTES;
	*out = w;
	return 0;
}

void
web_free(struct web **wp)
{
	struct web *w = *wp;

	if (w == NULL)
		return;
	free(w->config_path);
	free(w->database);
	free(w->state_dir);
	free(w);
	*wp = NULL;
}

const struct http_route *
web_routes(struct web *w, size_t *n)
{
	*n = w->nroutes;
	return w->routes;
}

/* ---- the embedded resources ---- */

static int
serve_asset(struct http_resp *resp, const char *type, const unsigned char *data, size_t len)
{
	http_resp_type(resp, type);
	return http_resp_write(resp, data, len);
}

int
web_static_css(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)ctx;
	(void)req;
	return serve_asset(resp, "text/css; charset=utf-8", web_asset_css, web_asset_css_len);
}

int
web_static_js(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)ctx;
	(void)req;
	return serve_asset(resp, "text/javascript; charset=utf-8", web_asset_js, web_asset_js_len);
}
