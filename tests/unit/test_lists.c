/*
 * test_lists: list formats per line, skipped-line counting and notes, file errors.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lists.h"

#define MAX_GOT 64

struct got {
	char names[MAX_GOT][NAMES_MAX_TEXT];
	size_t n;
	int fail_after;		/* > 0: return -ECANCELED on that call */
};

static int
collect(void *arg, const struct names_name *n)
{
	struct got *g = arg;
	if (g->fail_after > 0 && (size_t)g->fail_after == g->n + 1)
		return -ECANCELED;
	assert_true(g->n < MAX_GOT);
	names_to_text(n, g->names[g->n++]);
	return 0;
}

/* space-separated names collected, for compact comparison */
static void
joined(const struct got *g, char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; i < g->n; i++) {
		if (i > 0)
			strncat(buf, " ", size - strlen(buf) - 1);
		strncat(buf, g->names[i], size - strlen(buf) - 1);
	}
}

struct line_case {
	const char *in;
	const char *names;	/* accepted names, space separated */
	size_t skipped;
	size_t ignored;
};

static const struct line_case line_cases[] = {
	/* plain names */
	{"tracking.miui.com", "tracking.miui.com", 0, 0},
	{"Tracking.MIUI.com.", "tracking.miui.com", 0, 0},
	{"  spaced.example  \t", "spaced.example", 0, 0},
	{"crlf.example\r", "crlf.example", 0, 0},
	{"xn--bcher-kva.example", "xn--bcher-kva.example", 0, 0},
	{"b\xc3\xbc" "cher.example", "", 1, 0},
	{"bad..name", "", 1, 0},
	{"two names.example", "", 1, 0},
	{".", "", 1, 0},
	/* wildcards */
	{"*.miui.com", "miui.com", 0, 0},
	{"*miui.com", "", 1, 0},
	{"a.*.miui.com", "", 1, 0},
	/* comments and blanks */
	{"", "", 0, 0},
	{"   ", "", 0, 0},
	{"# comment", "", 0, 0},
	{"! comment", "", 0, 0},
	{"  # indented comment", "", 0, 0},
	{"name.example # trailing comment", "name.example", 0, 0},
	{"name.example\t# trailing comment", "name.example", 0, 0},
	{"name.example#notacomment", "", 1, 0},
	/* hosts lines */
	{"0.0.0.0 a.example", "a.example", 0, 0},
	{"127.0.0.1 a.example b.example c.example", "a.example b.example c.example", 0, 0},
	{"::  v6.example", "v6.example", 0, 0},
	{"::1 v6.example", "v6.example", 0, 0},
	{"0.0.0.0\ttab.example", "tab.example", 0, 0},
	{"0.0.0.0 ok.example bad! ok2.example", "ok.example ok2.example", 1, 0},
	{"0.0.0.0", "", 1, 0},
	{"0.0.0.0 a.example # comment", "a.example", 0, 0},
	{"0.0.0.0 *.wild.example", "wild.example", 0, 0},
	{"999.0.0.1 a.example", "", 1, 0},
	/* hosts boilerplate: ignored, not skipped */
	{"127.0.0.1 localhost", "", 0, 1},
	{"127.0.0.1 localhost.localdomain", "", 0, 1},
	{"255.255.255.255 broadcasthost", "", 0, 1},
	{"::1 ip6-localhost ip6-loopback", "", 0, 2},
	{"ff02::1 ip6-allnodes", "", 0, 1},
	{"0.0.0.0 0.0.0.0", "", 0, 1},
	{"localhost", "", 0, 1},
	{"localhost.example", "localhost.example", 0, 0},
	/* adblock */
	{"||ads.example.com^", "ads.example.com", 0, 0},
	{"||ADS.example.com^", "ads.example.com", 0, 0},
	{"||pipe.example^|", "pipe.example", 0, 0},
	{"||opt.example^$third-party", "", 1, 0},
	{"@@||exception.example^", "", 1, 0},
	{"||path.example/ads^", "", 1, 0},
	{"||nocaret.example", "", 1, 0},
	{"||after.example^foo", "", 1, 0},
	{"||*.wild.example^", "wild.example", 0, 0},
	{"example.com##.banner", "", 1, 0},
	{"[Adblock Plus 2.0]", "", 0, 0},
	{"/regex.*/", "", 1, 0},
};

static void
test_lines_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *lc = &line_cases[i];
		struct got g = {.n = 0};
		struct lists_stats st = {0};
		struct diag d;
		diag_init(&d);
		int rc = lists_parse_buf(lc->in, strlen(lc->in), "t.txt", &d, collect, &g, &st);
		assert_int_equal(rc, 0);
		char buf[1024];
		joined(&g, buf, sizeof(buf));
		if (strcmp(buf, lc->names) != 0 || st.skipped != lc->skipped ||
		    st.ignored != lc->ignored)
			fail_msg("'%s': got names '%s' skipped %zu ignored %zu, expected '%s' %zu %zu",
				 lc->in, buf, st.skipped, st.ignored, lc->names, lc->skipped,
				 lc->ignored);
		assert_int_equal(st.names, g.n);
		assert_int_equal(d.n, lc->skipped);	/* one note per skipped line */
		assert_int_equal(d.nerrors, 0);
		diag_clear(&d);
	}
}

static void
test_buf_lines_and_bom(void **state)
{
	(void)state;
	const char text[] = "\xef\xbb\xbf" "first.example\nsecond.example\r\n\nbad line\nlast.example";
	struct got g = {.n = 0};
	struct lists_stats st = {0};
	struct diag d;
	diag_init(&d);
	assert_int_equal(lists_parse_buf(text, sizeof(text) - 1, "mem.txt", &d, collect, &g, &st),
			 0);
	char buf[1024];
	joined(&g, buf, sizeof(buf));
	assert_string_equal(buf, "first.example second.example last.example");
	assert_int_equal(st.lines, 5);
	assert_int_equal(st.skipped, 1);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.v[0].level, DIAG_NOTE);
	assert_int_equal(d.v[0].line, 4);
	assert_string_equal(d.v[0].text,
			    "mem.txt:4: skipped: unexpected text after the name: 'bad line'");
	diag_clear(&d);
}

/* A skipped entry is quoted in its note with control octets (terminal escapes, NUL, tabs) as
 * '?', cut at 80 octets: a list file from the network cannot put them in a message. */
static void
test_note_quotes_control_octets(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t len;
		const char *note;
	} cases[] = {
		{"bad\x1b[31mname\x01.example\n", 22,
		 "mem.txt:1: skipped: invalid character: 'bad?[31mname?.example'"},
		{"a.example\tb\x7f.example\n", 21,
		 "mem.txt:1: skipped: unexpected text after the name: 'a.example?b?.example'"},
		{"nul\0inside.example\n", 19,
		 "mem.txt:1: skipped: invalid character: 'nul?inside.example'"},
		{"\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b"
		 "\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b"
		 "\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b"
		 "\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b\x1b"
		 "\x1b\n", 82,
		 "mem.txt:1: skipped: invalid character: '????????????????????????????????????????"
		 "????????????????????????????????????????...'"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct got g = {.n = 0};
		struct lists_stats st = {0};
		struct diag d;
		diag_init(&d);
		assert_int_equal(lists_parse_buf(cases[i].text, cases[i].len, "mem.txt", &d,
						 collect, &g, &st), 0);
		assert_int_equal(g.n, 0);
		assert_int_equal(d.n, 1);
		assert_string_equal(d.v[0].text, cases[i].note);
		diag_clear(&d);
	}
}

static void
test_callback_stops(void **state)
{
	(void)state;
	const char text[] = "a.example\nb.example\nc.example\n";
	struct got g = {.n = 0, .fail_after = 2};
	struct lists_stats st = {0};
	assert_int_equal(lists_parse_buf(text, sizeof(text) - 1, "x", NULL, collect, &g, &st),
			 -ECANCELED);
	assert_int_equal(g.n, 1);
}

struct file_case {
	const char *file;
	const char *names;
	size_t lines, skipped, ignored;
	size_t notes;
	const char *first_note;	/* text after the data dir, NULL = none */
};

static const struct file_case file_cases[] = {
	{"plain.txt",
	 "tracking.miui.com data.mistat.xiaomi.com api.ad.xiaomi.com wildcard.example", 8, 1, 0,
	 1, "plain.txt:8: skipped: empty label: 'bad..name'"},
	{"hosts.txt",
	 "ads.example.com tracker.example.net metrics.example.org v6.example.org ok.example "
	 "also-ok.example",
	 12, 2, 7, 2, "hosts.txt:11: skipped: invalid character: 'bad_name!'"},
	{"adblock.txt", "ads.example.com tracker.example.net pipe.example", 10, 5, 0, 5,
	 "adblock.txt:5: skipped: adblock rule with options: '||third.example^$third-party'"},
	{"many-bad.txt", "good.example", 8, 7, 0, 6,
	 "many-bad.txt:1: skipped: unexpected text after the name: 'bad1 name with spaces'"},
};

static void
test_files_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		const struct file_case *fc = &file_cases[i];
		char path[512];
		snprintf(path, sizeof(path), "%s/lists/%s", VETO_TEST_DATA, fc->file);
		struct got g = {.n = 0};
		struct lists_stats st = {0};
		struct diag d;
		diag_init(&d);
		int rc = lists_read_file(path, "veto.yaml", 3, 5, "lists.x.files[0]", &d, collect,
					 &g, &st);
		assert_int_equal(rc, 0);
		char buf[1024];
		joined(&g, buf, sizeof(buf));
		if (strcmp(buf, fc->names) != 0)
			fail_msg("%s: names '%s', expected '%s'", fc->file, buf, fc->names);
		if (st.lines != fc->lines || st.skipped != fc->skipped || st.ignored != fc->ignored)
			fail_msg("%s: lines %zu skipped %zu ignored %zu", fc->file, st.lines,
				 st.skipped, st.ignored);
		assert_int_equal(d.n, fc->notes);
		assert_int_equal(d.nerrors, 0);
		if (fc->first_note != NULL) {
			char want[1024];
			snprintf(want, sizeof(want), "%s/lists/%s", VETO_TEST_DATA, fc->first_note);
			assert_string_equal(d.v[0].text, want);
		}
		diag_clear(&d);
	}
}

static void
test_many_skipped_summary(void **state)
{
	(void)state;
	char path[512];
	snprintf(path, sizeof(path), "%s/lists/many-bad.txt", VETO_TEST_DATA);
	struct got g = {.n = 0};
	struct lists_stats st = {0};
	struct diag d;
	diag_init(&d);
	assert_int_equal(lists_read_file(path, "c.yaml", 1, 1, "k", &d, collect, &g, &st), 0);
	assert_int_equal(d.n, LISTS_MAX_NOTES + 1);
	char want[1024];
	snprintf(want, sizeof(want), "%s: skipped 7 lines in total, the first 5 shown", path);
	assert_string_equal(d.v[LISTS_MAX_NOTES].text, want);
	diag_clear(&d);
}

static void
test_missing_file(void **state)
{
	(void)state;
	struct got g = {.n = 0};
	struct lists_stats st = {0};
	struct diag d;
	diag_init(&d);
	int rc = lists_read_file("/nonexistent/veto-list.txt", "conf/veto.yaml", 14, 22,
				 "lists.xiaomi.files[1]", &d, collect, &g, &st);
	assert_int_equal(rc, -ENOENT);
	assert_int_equal(d.nerrors, 1);
	assert_string_equal(d.v[0].text,
			    "conf/veto.yaml:14:22: lists.xiaomi.files[1]: cannot read list file "
			    "'/nonexistent/veto-list.txt': No such file or directory");
	diag_clear(&d);

	/* a directory cannot be read as a list either */
	diag_init(&d);
	rc = lists_read_file(VETO_TEST_DATA, "c.yaml", 1, 1, "k", &d, collect, &g, &st);
	assert_int_equal(rc, -EISDIR);
	assert_int_equal(d.nerrors, 1);
	diag_clear(&d);
}

struct name_case {
	const char *in;
	int rc;
	const char *out;
};

static const struct name_case name_cases[] = {
	{"use-application-dns.net", 0, "use-application-dns.net"},
	{"*.Portal.Example.org.", 0, "portal.example.org"},
	{"localhost", 1, NULL},
	{"127.0.0.1", 1, NULL},
	{".", -EINVAL, NULL},
	{"*.", -EINVAL, NULL},
	{"", -EINVAL, NULL},
	{"a b", -EINVAL, NULL},
};

static void
test_parse_name_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(name_cases) / sizeof(name_cases[0]); i++) {
		const struct name_case *nc = &name_cases[i];
		struct names_name n;
		const char *why = NULL;
		int rc = lists_parse_name(nc->in, strlen(nc->in), &n, &why);
		if (rc != nc->rc)
			fail_msg("'%s': rc %d expected %d", nc->in, rc, nc->rc);
		if (rc < 0)
			assert_non_null(why);
		if (rc == 0) {
			char buf[NAMES_MAX_TEXT];
			names_to_text(&n, buf);
			assert_string_equal(buf, nc->out);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_table),
		cmocka_unit_test(test_buf_lines_and_bom),
		cmocka_unit_test(test_note_quotes_control_octets),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_files_table),
		cmocka_unit_test(test_many_skipped_summary),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_parse_name_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
