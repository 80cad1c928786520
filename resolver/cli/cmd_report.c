/*
 * cmd_report: `veto report attempts|summary|device`, the answers administrators ask the query
 * database for. Reads through logdb_query.c (read-only connection).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "cmd_report_int.h"
#include "json.h"
#include "logdb_reader.h"
#include "output.h"
#include "review.h"

#define DEFAULT_SINCE "7d"
#define BAR_WIDTH     40

enum report {
	REPORT_ATTEMPTS,
	REPORT_SUMMARY,
	REPORT_DEVICE,
};

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: veto report attempts [options] [filters] [--wide]\n"
	        "       veto report summary [options] [filters] [--top N]\n"
	        "       veto report device NAME|MAC|IP [options] [filters]\n"
	        "\n"
	        "  attempts  one row per device (its MAC, else its address, whatever its name)\n"
	        "            with blocked queries: its latest name, address, vendor (source) and\n"
	        "            the names that proved it, group, attempts (queries a list blocked),\n"
	        "            distinct names attempted, queries refused by the group's default\n"
	        "            deny (no list matched: counted apart), top lists, first and last\n"
	        "  summary   totals and blocked share per group and per list, top names blocked by\n"
	        "            a list (not by a default deny), top clients, queries per hour (a bar\n"
	        "            chart in the table format)\n"
	        "  device    one device's queries and device events (first seen, vendor, group\n"
	        "            change) in time order, by device name, MAC or client IP\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE  configuration naming log.database "
	        "(default " CMD_DEFAULT_CONFIG_HELP ")\n"
	        "  --db PATH          the database file itself\n"
	        "  --since WHEN       default " DEFAULT_SINCE
	        " ('all' for everything); see veto log --help\n"
	        "  --until WHEN\n"
	        "  --format FORMAT    table (default), csv (UTC times as 2026-11-22 03:58:22.123),\n"
	        "                     json\n"
	        "  --wide             every column at full width (the table otherwise fits COLUMNS,\n"
	        "                     else the terminal, else 100 columns)\n"
	        "  --limit N          attempts: at most N devices; device: the newest N queries\n"
	        "                     (default 1000) and the events since the oldest; 0 = all\n"
	        "  --top N            summary: rows of top blocked names and top clients\n"
	        "                     (default 10)\n"
	        "  -h, --help         show this help\n"
	        "filters (as in veto log; repeated or a,b: any of the values): --client, --mac,\n"
	        "  --device, --group, --vendor, --domain, --list, --blocked, --allowed, --action,\n"
	        "  --instance (the shared store: store.postgresql, read instead of log.database)\n"
	        "\n"
	        "exit codes: 0 ok, 1 the database cannot be read, 2 bad usage or configuration.\n");
}

static void
fmt_u64(char *buf, size_t cap, uint64_t v)
{
	snprintf(buf, cap, "%" PRIu64, v);
}

static void
fmt_share(char *buf, size_t cap, uint64_t part, uint64_t whole)
{
	if (whole == 0)
		snprintf(buf, cap, "-");
	else
		snprintf(buf, cap, "%.1f%%", 100.0 * (double)part / (double)whole);
}

/* ---- attempts ---- */

static const char *const attempts_heads[] = {
        "DEVICE",   "NAME",  "CLIENT",       "VENDOR",    "EVIDENCE", "GROUP",
        "ATTEMPTS", "NAMES", "DEFAULT DENY", "TOP LISTS", "FIRST",    "LAST"};
static const bool attempts_right[] = {false, false, false, false, false, false,
                                      true,  true,  true,  false, false, false};
static const struct output_col attempts_cols[] = {
        {.prio = 0, .min = 12, .max = 39}, /* DEVICE: MAC or address */
        {.prio = 3, .min = 8, .max = 24},  /* NAME */
        {.prio = 6, .min = 15, .max = 39}, /* CLIENT */
        {.prio = 4, .min = 8, .max = 24},  /* VENDOR */
        {.prio = 5, .min = 10, .max = 32}, /* EVIDENCE */
        {.prio = 3, .min = 5, .max = 16},  /* GROUP */
        {.prio = 0, .min = 8},             /* ATTEMPTS */
        {.prio = 7, .min = 5},             /* NAMES */
        {.prio = 1, .min = 12},            /* DEFAULT DENY */
        {.prio = 1, .min = 10, .max = 40}, /* TOP LISTS */
        {.prio = 8, .min = 19},            /* FIRST */
        {.prio = 2, .min = 19},            /* LAST */
};

static int
on_attempt(void *arg, const struct logdb_attempt *a)
{
	struct cmd_report_ctx *c = arg;
	char first[OUTPUT_TIME_MAX], last[OUTPUT_TIME_MAX], att[24], names[24], denied[24];
	char vendor[96];
	FILE *f = c->out;

	switch (c->format) {
	case CMD_REPORT_TABLE:
		output_format_time(a->first_ms, true, first);
		output_format_time(a->last_ms, true, last);
		fmt_u64(att, sizeof(att), a->attempts);
		fmt_u64(names, sizeof(names), a->names);
		fmt_u64(denied, sizeof(denied), a->denied);
		if (a->vendor != NULL && a->vendor_source != NULL)
			snprintf(vendor, sizeof(vendor), "%s (%s)", a->vendor, a->vendor_source);
		else
			snprintf(vendor, sizeof(vendor), "%s", a->vendor != NULL ? a->vendor : "-");
		const char *cells[] = {
		        a->key, a->device, a->client, vendor,
		        a->evidence, a->group, att, names,
		        denied, a->top_lists[0] != '\0' ? a->top_lists : NULL, first, last};
		return output_table_add(c->table, cells) == 0 ? 0 : -ENOMEM;
	case CMD_REPORT_CSV:
		review_attempts_csv_row(f, a);
		break;
	case CMD_REPORT_JSON:
		fputs(c->first ? "[\n{" : ",\n{", f);
		output_json_str(f, false, "key", a->key);
		output_json_str(f, true, "device", a->device);
		output_json_str(f, true, "client", a->client);
		output_json_str(f, true, "mac", a->mac);
		output_json_str(f, true, "vendor", a->vendor);
		output_json_str(f, true, "vendor_source", a->vendor_source);
		output_json_str(f, true, "group", a->group);
		output_json_str(f, true, "vendor_evidence", a->evidence);
		output_json_u64(f, "attempts", a->attempts);
		output_json_u64(f, "names", a->names);
		output_json_u64(f, "default_deny", a->denied);
		fputs(",\"top_lists\":[", f);
		for (size_t k = 0; k < a->ntop; k++) {
			fputs(k > 0 ? ",{" : "{", f);
			output_json_str(f, false, "list", a->top[k].list);
			output_json_u64(f, "attempts", a->top[k].attempts);
			fputc('}', f);
		}
		fputc(']', f);
		output_json_time(f, "first", a->first_ms);
		output_json_time(f, "last", a->last_ms);
		fputc('}', f);
		break;
	}
	c->first = false;
	return 0;
}

static int
report_attempts(struct logdb_reader *r, const struct logdb_filter *f, struct cmd_report_ctx *c)
{
	int rc;

	if (c->format == CMD_REPORT_TABLE) {
		rc = output_table_new(sizeof(attempts_heads) / sizeof(attempts_heads[0]),
		                     attempts_heads, &c->table);
		if (rc == 0)
			rc = output_table_fit(c->table, attempts_cols, c->width);
		if (rc != 0)
			return rc;
	} else if (c->format == CMD_REPORT_CSV) {
		review_attempts_csv_head(c->out);
	}
	rc = logdb_report_attempts(r, f, on_attempt, c);
	if (c->format == CMD_REPORT_TABLE) {
		if (rc == 0)
			output_table_print(c->table, c->out, attempts_right, true);
		if (rc == 0 && !c->first)
			fputs("ATTEMPTS: queries a block list matched; DEFAULT DENY: queries the "
			      "group's default deny refused\n(no list matched), counted apart\n",
			      c->out);
	} else if (c->format == CMD_REPORT_JSON) {
		fputs(c->first ? "[]\n" : "\n]\n", c->out);
	}
	return rc;
}

/* ---- summary ---- */

static const char *const section_json[] = {
        [LOGDB_SUMMARY_TOTAL] = "total",
        [LOGDB_SUMMARY_GROUP] = "groups",
        [LOGDB_SUMMARY_LIST] = "lists",
        [LOGDB_SUMMARY_TOP_BLOCKED] = "top_blocked",
        [LOGDB_SUMMARY_TOP_CLIENT] = "top_clients",
        [LOGDB_SUMMARY_HOUR] = "hours",
};
static const char *const section_label_key[] = {
        [LOGDB_SUMMARY_TOTAL] = "",
        [LOGDB_SUMMARY_GROUP] = "group",
        [LOGDB_SUMMARY_LIST] = "list",
        [LOGDB_SUMMARY_TOP_BLOCKED] = "qname",
        [LOGDB_SUMMARY_TOP_CLIENT] = "client",
        [LOGDB_SUMMARY_HOUR] = "hour",
};
static const char *const section_title[] = {
        [LOGDB_SUMMARY_TOTAL] = "",
        [LOGDB_SUMMARY_GROUP] = "GROUP",
        [LOGDB_SUMMARY_LIST] = "LIST",
        [LOGDB_SUMMARY_TOP_BLOCKED] = "BLOCKED NAME",
        [LOGDB_SUMMARY_TOP_CLIENT] = "CLIENT",
        [LOGDB_SUMMARY_HOUR] = "HOUR",
};

static void
table_section_end(struct cmd_report_ctx *c)
{
	static const bool right[] = {false, true, true, true};

	if (c->table != NULL) {
		output_table_print(c->table, c->out, right, true);
		output_table_free(&c->table);
	}
}

static int
hours_add(struct cmd_report_ctx *c, const struct logdb_summary_row *row)
{
	if (c->nhours == c->caphours) {
		size_t cap = c->caphours > 0 ? 2 * c->caphours : 64;
		struct cmd_report_hour *nh = realloc(c->hours, cap * sizeof(*nh));
		if (nh == NULL)
			return -ENOMEM;
		c->hours = nh;
		c->caphours = cap;
	}
	c->hours[c->nhours++] = (struct cmd_report_hour){row->ts_ms, row->total, row->blocked};
	if (row->total > c->hour_max)
		c->hour_max = row->total;
	return 0;
}

static void
print_hours(struct cmd_report_ctx *c)
{
	char t[OUTPUT_TIME_MAX];
	/* "2026-11-22 04:00  " 18, counts 8 + 1 + 7 + 2: the bar takes what is left */
	uint64_t bar = c->width == 0 || c->width >= 36 + BAR_WIDTH ? BAR_WIDTH
	               : c->width > 36 + 4                       ? c->width - 36
	                                                         : 4;

	if (c->nhours == 0)
		return;
	fprintf(c->out,
	        "\nQUERIES PER HOUR (local time; '#' blocked, '=' other; longest bar "
	        "%" PRIu64 ")\n",
	        c->hour_max);
	for (size_t i = 0; i < c->nhours; i++) {
		const struct cmd_report_hour *h = &c->hours[i];
		size_t len =
		        c->hour_max > 0
		                ? (size_t)((h->total * bar + c->hour_max - 1) / c->hour_max)
		                : 0;
		size_t nb =
		        h->total > 0 ? (size_t)((h->blocked * len + h->total - 1) / h->total) : 0;
		output_format_time(h->ts_ms, true, t);
		t[13] = '\0'; /* "YYYY-MM-DD HH" */
		fprintf(c->out, "%s:00  %8" PRIu64 " %7" PRIu64 "  ", t, h->total, h->blocked);
		for (size_t k = 0; k < len; k++)
			fputc(k < nb ? '#' : '=', c->out);
		fputc('\n', c->out);
	}
}

static int
on_summary(void *arg, const struct logdb_summary_row *row)
{
	struct cmd_report_ctx *c = arg;
	FILE *f = c->out;
	char total[24], blocked[24], share[24], t[OUTPUT_TIME_MAX];
	const char *label = row->label;

	if (row->section == LOGDB_SUMMARY_TOTAL) {
		c->total = row->total;
		c->blocked = row->blocked;
	}
	if (row->section == LOGDB_SUMMARY_HOUR) {
		output_format_time(row->ts_ms, c->format == CMD_REPORT_TABLE, t);
		label = t;
	}
	bool new_section = !c->section_open || row->section != c->section;
	if (c->format == CMD_REPORT_TABLE) {
		if (new_section) {
			table_section_end(c);
			c->section = row->section;
			c->section_open = true;
		}
		fmt_u64(total, sizeof(total), row->total);
		fmt_u64(blocked, sizeof(blocked), row->blocked);
		switch (row->section) {
		case LOGDB_SUMMARY_TOTAL:
			fmt_share(share, sizeof(share), row->blocked, row->total);
			fprintf(f, "queries %" PRIu64 ", blocked %" PRIu64 " (%s)", row->total,
			        row->blocked, share);
			if (row->denied > 0)
				fprintf(f, ", of which %" PRIu64 " refused by a group's default deny",
				        row->denied);
			fputc('\n', f);
			return 0;
		case LOGDB_SUMMARY_HOUR:
			return hours_add(c, row);
		case LOGDB_SUMMARY_LIST:
			/* share of all blocked queries */
			fmt_share(share, sizeof(share), row->blocked, c->blocked);
			break;
		default:
			fmt_share(share, sizeof(share), row->blocked, row->total);
			break;
		}
		/* a list decides blocked queries (block lists) and allowed ones (allow lists):
		 * its columns are those two and its share of all blocked queries */
		bool list = row->section == LOGDB_SUMMARY_LIST;
		if (new_section) {
			const char *heads[] = {section_title[row->section],
			                       list ? "BLOCKED" : "QUERIES",
			                       list ? "OF BLOCKED" : "BLOCKED",
			                       list ? "ALLOWED" : "BLOCKED %"};
			static const struct output_col cols[] = {
			        {.prio = 0, .min = 16}, {.prio = 0}, {.prio = 0}, {.prio = 0}};
			fputc('\n', f);
			if (output_table_new(4, heads, &c->table) != 0 ||
			    output_table_fit(c->table, cols, c->width) != 0)
				return -ENOMEM;
		}
		char allowed[24];
		fmt_u64(allowed, sizeof(allowed), row->total - row->blocked);
		const char *cells[] = {label != NULL ? label : "(none)", list ? blocked : total,
		                       list ? share : blocked, list ? allowed : share};
		return output_table_add(c->table, cells) == 0 ? 0 : -ENOMEM;
	}
	if (c->format == CMD_REPORT_CSV) {
		if (row->section == LOGDB_SUMMARY_HOUR) {
			output_format_csv_time(row->ts_ms, t);
			label = t;
		}
		fprintf(f, "%s,", section_json[row->section]);
		output_csv(f, label);
		fprintf(f, ",%" PRIu64 ",%" PRIu64 "\n", row->total, row->blocked);
		if (row->section == LOGDB_SUMMARY_TOTAL)
			fprintf(f, "default_deny,,%" PRIu64 ",%" PRIu64 "\n", row->denied,
			        row->denied);
		return 0;
	}
	/* json */
	if (row->section == LOGDB_SUMMARY_TOTAL) {
		fprintf(f,
		        "{\"total\":%" PRIu64 ",\"blocked\":%" PRIu64 ",\"default_deny\":%" PRIu64,
		        row->total, row->blocked, row->denied);
		c->section = row->section;
		c->section_open = true;
		return 0;
	}
	if (new_section) {
		if (c->section != LOGDB_SUMMARY_TOTAL)
			fputc(']', f);
		fprintf(f, ",\n\"%s\":[", section_json[row->section]);
		c->section = row->section;
	} else {
		fputc(',', f);
	}
	fputc('{', f);
	output_json_str(f, false, section_label_key[row->section], label);
	output_json_u64(f, "queries", row->total);
	output_json_u64(f, "blocked", row->blocked);
	fputc('}', f);
	return 0;
}

static int
report_summary(struct logdb_reader *r, const struct logdb_filter *f, uint32_t top,
               struct cmd_report_ctx *c)
{
	int rc;

	if (c->format == CMD_REPORT_CSV)
		fputs("section,label,queries,blocked\n", c->out);
	rc = logdb_report_summary(r, f, top, on_summary, c);
	if (rc != 0)
		return rc;
	if (c->format == CMD_REPORT_TABLE) {
		table_section_end(c);
		print_hours(c);
	} else if (c->format == CMD_REPORT_JSON) {
		/* sections without rows are written empty */
		fputs(c->section != LOGDB_SUMMARY_TOTAL ? "]" : "", c->out);
		for (int s = (int)c->section + 1; s <= LOGDB_SUMMARY_HOUR; s++)
			fprintf(c->out, ",\n\"%s\":[]", section_json[s]);
		fputs("}\n", c->out);
	}
	return 0;
}

/* ---- command ---- */

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
parse_u32(const char *v, uint32_t *out)
{
	char *end;
	unsigned long n;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	n = strtoul(v, &end, 10);
	if (*end != '\0' || n > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)n;
	return 0;
}

int
cmd_report(int argc, char **argv)
{
	static const char *const reports[] = {"attempts", "summary", "device"};
	const char *config = NULL, *db = NULL, *who = NULL;
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct cmd_report_ctx c = {.format = CMD_REPORT_TABLE, .out = stdout, .first = true};
	enum report which;
	uint32_t top = 10;
	bool limit_set = false, wide = false;
	int rc;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CMD_EXIT_USAGE : CMD_EXIT_OK;
	}
	size_t k = 0;
	while (k < sizeof(reports) / sizeof(reports[0]) && strcmp(argv[1], reports[k]) != 0)
		k++;
	if (k == sizeof(reports) / sizeof(reports[0])) {
		fprintf(stderr,
		        "veto report: unknown report '%s' (expected attempts, summary, "
		        "device)\n\n",
		        argv[1]);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	which = (enum report)k;
	logdb_filter_init(&f);
	output_parse_time(DEFAULT_SINCE, now_ms(), &f.since_ms);
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		int fk = cmd_log_filter_opt("veto report", argc, argv, &i, &f);
		if (fk < 0)
			return CMD_EXIT_USAGE;
		if (fk > 0)
			continue;
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CMD_EXIT_OK;
		}
		if (strcmp(a, "--wide") == 0) {
			wide = true;
			continue;
		}
		if (a[0] != '-' && which == REPORT_DEVICE && who == NULL) {
			who = a;
			continue;
		}
		bool needs = strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 ||
		             strcmp(a, "--db") == 0 || strcmp(a, "--format") == 0 ||
		             strcmp(a, "--limit") == 0 || strcmp(a, "--top") == 0;
		if (!needs) {
			fprintf(stderr, "veto report: unknown argument '%s'\n\n", a);
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "veto report: option '%s' needs a value\n", a);
			return CMD_EXIT_USAGE;
		}
		const char *v = argv[++i];
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			config = v;
		} else if (strcmp(a, "--db") == 0) {
			db = v;
		} else if (strcmp(a, "--format") == 0) {
			if (strcmp(v, "table") == 0) {
				c.format = CMD_REPORT_TABLE;
			} else if (strcmp(v, "csv") == 0) {
				c.format = CMD_REPORT_CSV;
			} else if (strcmp(v, "json") == 0) {
				c.format = CMD_REPORT_JSON;
			} else {
				fprintf(stderr,
				        "veto report: --format: unknown value '%s' (expected "
				        "table, csv, json)\n",
				        v);
				return CMD_EXIT_USAGE;
			}
		} else if (parse_u32(v, strcmp(a, "--top") == 0 ? &top : &f.limit) != 0) {
			fprintf(stderr, "veto report: %s: bad number '%s'\n", a, v);
			return CMD_EXIT_USAGE;
		} else if (strcmp(a, "--limit") == 0) {
			limit_set = true;
		}
	}
	if (which == REPORT_DEVICE) {
		if (who == NULL) {
			fprintf(stderr,
			        "veto report device: which device? (a name, a MAC or an IP)\n");
			return CMD_EXIT_USAGE;
		}
		f.who = who;
		if (!limit_set)
			f.limit = 1000;
	}
	c.width = output_term_width(wide);
	rc = cmd_log_open("veto report", config, db, &f, &r);
	if (rc != CMD_EXIT_OK)
		return rc;
	switch (which) {
	case REPORT_ATTEMPTS:
		rc = report_attempts(r, &f, &c);
		break;
	case REPORT_SUMMARY:
		rc = report_summary(r, &f, top, &c);
		break;
	case REPORT_DEVICE:
		rc = cmd_report_device(r, &f, &c);
		break;
	}
	fflush(c.out);
	output_table_free(&c.table);
	free(c.hours);
	logdb_reader_free(&r);
	if (rc == -EINVAL) {
		fprintf(stderr,
		        "veto report: bad filter (a --domain or --mac that cannot be read)\n");
		return CMD_EXIT_USAGE;
	}
	return rc == 0 ? CMD_EXIT_OK : CMD_EXIT_RUNTIME;
}
