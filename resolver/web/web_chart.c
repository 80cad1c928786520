/*
 * web_chart: the overview's charts, drawn on the server as SVG (no script, no library):
 * one bar per bucket for the queries, the blocked part stacked over it in another colour,
 * a tooltip (<title>) per bar, a few time labels and the scale. Colours come from the
 * stylesheet's classes (the CSP allows no inline style).
 */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "web_int.h"

#define CHART_W      720
#define CHART_H      200
#define CHART_LEFT   48
#define CHART_BOTTOM 20
#define CHART_TOP    8

int
web_chart(struct http_resp *resp, const char *title, const struct web_bucket *b, size_t n,
          size_t label_every, bool days)
{
	uint64_t max = 0, total = 0, blocked = 0;
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (b[i].total > max)
			max = b[i].total;
		total += b[i].total;
		blocked += b[i].blocked;
	}
	rc = http_resp_printf(resp, "<figure class=\"chart\"><figcaption>");
	if (rc == 0)
		rc = http_resp_html(resp, title);
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      ": %" PRIu64 " queries, %" PRIu64 " blocked (%.1f %%)"
		                      "</figcaption>\n<svg viewBox=\"0 0 %d %d\" role=\"img\" "
		                      "class=\"bars\">",
		                      total, blocked,
		                      total > 0 ? 100.0 * (double)blocked / (double)total : 0.0,
		                      CHART_W, CHART_H);
	double plot_w = CHART_W - CHART_LEFT, plot_h = CHART_H - CHART_BOTTOM - CHART_TOP;
	double bw = n > 0 ? plot_w / (double)n : plot_w;
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
		                      "y2=\"%.1f\"/><text class=\"lbl\" x=\"%d\" y=\"%d\" "
		                      "text-anchor=\"end\">%" PRIu64 "</text><text class=\"lbl\" "
		                      "x=\"%d\" y=\"%.1f\" text-anchor=\"end\">0</text>",
		                      CHART_LEFT, CHART_TOP + plot_h, CHART_W, CHART_TOP + plot_h,
		                      CHART_LEFT - 4, CHART_TOP + 10, max, CHART_LEFT - 4,
		                      CHART_TOP + plot_h);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		double x = CHART_LEFT + bw * (double)i;
		double ht = max > 0 ? plot_h * (double)b[i].total / (double)max : 0;
		double hb = max > 0 ? plot_h * (double)b[i].blocked / (double)max : 0;
		time_t t = (time_t)(b[i].ts_ms / 1000);
		struct tm tm;
		char when[32] = "";
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), days ? "%Y-%m-%d" : "%Y-%m-%d %H:00", &tm);
		rc = http_resp_printf(
		        resp,
		        "<g><title>%s: %" PRIu64 " queries, %" PRIu64
		        " blocked</title><rect class=\"q\" x=\"%.1f\" y=\"%.1f\" "
		        "width=\"%.1f\" height=\"%.1f\"/><rect class=\"b\" x=\"%.1f\" "
		        "y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></g>",
		        when, b[i].total, b[i].blocked, x, CHART_TOP + plot_h - ht, bw * 0.85, ht,
		        x, CHART_TOP + plot_h - hb, bw * 0.85, hb);
		if (rc == 0 && label_every > 0 && i % label_every == 0 && when[0] != '\0') {
			char lbl[16];
			strftime(lbl, sizeof(lbl), days ? "%m-%d" : "%H:00", &tm);
			rc = http_resp_printf(resp,
			                      "<text class=\"lbl\" x=\"%.1f\" y=\"%d\">%s</text>",
			                      x, CHART_H - 4, lbl);
		}
	}
	if (rc == 0)
		rc = http_resp_printf(resp,
		                      "</svg><p class=\"legend\"><span class=\"swatch q\"></span> "
		                      "queries <span class=\"swatch b\"></span> blocked</p>"
		                      "</figure>\n");
	return rc;
}
