/*
 * cmd_report_int: what the files of `veto report` share (cmd_report.c: the command, attempts
 * and summary; cmd_report_device.c: one device's timeline): the output context. Their JSON,
 * CSV and table helpers are in output.h; cmd_report_device.c calls nothing of cmd_report.c.
 */
#ifndef VETO_CMD_REPORT_INT_H
#define VETO_CMD_REPORT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "logdb_reader.h"
#include "output.h"

enum cmd_report_format {
	CMD_REPORT_TABLE,
	CMD_REPORT_CSV,
	CMD_REPORT_JSON,
};

struct cmd_report_ctx {
	enum cmd_report_format format;
	FILE *out;
	bool first;
	struct output_table *table;
	size_t width; /* of the tables: output_term_width() */
	/* summary */
	enum logdb_summary_section section;
	bool section_open;
	uint64_t total, blocked; /* all queries, for shares */
	uint64_t hour_max;
	struct cmd_report_hour {
		uint64_t ts_ms, total, blocked;
	} * hours;
	size_t nhours, caphours;
};

/* `veto report device`: the queries and device events of f->who in time order. 0, -EINVAL,
 * -ENOMEM, -EIO. */
int cmd_report_device(struct logdb_reader *r, struct logdb_filter *f, struct cmd_report_ctx *c);

#endif
