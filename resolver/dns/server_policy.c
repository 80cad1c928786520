/*
 * server_policy: what the daemon tells of its policy through the control channel's `policy`
 * request (control.h): when the policy in use was loaded, the last reload's result and
 * problems, the groups and the lists as compiled. The web console's /policy page shows it.
 * Loop thread.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server_int.h"

#define PROBLEMS_MAX 50 /* problem lines kept of one reload */

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Writes s with tabs, newlines and other control octets as spaces. */
static void
put_field(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)(s != NULL ? s : ""); *p; p++)
		fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
}

void
server_note_reload(struct server *s, int status, const struct diag *d)
{
	uint64_t now = wall_ms();
	char *text = NULL;
	size_t len = 0;

	if (status == 1) { /* the start */
		s->policy_wall_ms = now;
		s->reload_status = 1;
		return;
	}
	s->reload_wall_ms = now;
	s->reload_status = status;
	if (status == 0)
		s->policy_wall_ms = now;
	free(s->reload_problems);
	s->reload_problems = NULL;
	FILE *f = d != NULL && d->n > 0 ? open_memstream(&text, &len) : NULL;
	if (f == NULL)
		return; /* none, or no memory: the log has them */
	size_t n = 0;
	for (size_t i = 0; i < d->n && n < PROBLEMS_MAX; i++) {
		const struct diag_entry *e = &d->v[i];
		if (e->level != DIAG_ERROR && e->level != DIAG_WARNING)
			continue;
		fputs(e->level == DIAG_ERROR ? "error\t" : "warning\t", f);
		put_field(f, e->bare != NULL ? e->bare : e->text);
		fputc('\n', f);
		n++;
	}
	if (fclose(f) == 0)
		s->reload_problems = text;
	else
		free(text);
}

/* "a,b" of the lists at idx[0..n) */
static void
put_lists(FILE *f, const struct config *cfg, const size_t *idx, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', f);
		put_field(f, cfg->lists[idx[i]].name);
	}
}

int
server_policy_text(void *arg, char **out)
{
	struct server *s = arg;
	const struct config *cfg = policy_config(s->policy);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return -ENOMEM;
	fprintf(f, "policy\t%" PRIu64 "\t", s->policy_wall_ms);
	put_field(f, cfg->path);
	fprintf(f, "\t%zu\t%zu\n", policy_names(s->policy), policy_memory(s->policy));
	fprintf(f, "reload\t%" PRIu64 "\t%s\t%" PRIu64 "\t%" PRIu64 "\n", s->reload_wall_ms,
	        s->reload_status == 1   ? "none"
	        : s->reload_status == 0 ? "ok"
	                                : "failed",
	        s->stats.reloads, s->stats.reload_failures);
	if (s->reload_problems != NULL)
		for (const char *p = s->reload_problems; *p != '\0';) {
			const char *nl = strchr(p, '\n');
			size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
			fputs("problem\t", f);
			fwrite(p, 1, n, f);
			fputc('\n', f);
			p += n + (nl != NULL);
		}
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		enum config_action a =
		        g->action == CONFIG_ACTION_INHERIT ? cfg->block.action : g->action;
		fputs("group\t", f);
		put_field(f, g->name);
		fprintf(f, "\t%s\t%s\t", config_action_name(a), g->default_deny ? "deny" : "allow");
		put_lists(f, cfg, g->block, g->nblock);
		fputc('\t', f);
		put_lists(f, cfg, g->allow, g->nallow);
		fprintf(f, "\t%zu\t%zu\t%zu\t%zu\t%zu\t%zu\n", g->nclients, g->nmacs, g->nvendors,
		        g->nhostnames, g->ndevices, g->ntags);
	}
	for (size_t i = 0; i < cfg->nlists; i++) {
		const struct config_list *l = &cfg->lists[i];
		struct policy_list_stats st;
		policy_list_stats(s->policy, (int)i, &st);
		fputs("list\t", f);
		put_field(f, l->name);
		fprintf(f, "\t%zu\t%zu\t%zu\t%zu\t%zu\n", st.entries, st.skipped, l->nfiles,
		        l->nurls, l->ndomains);
	}
	if (fclose(f) != 0) {
		free(text);
		return -ENOMEM;
	}
	*out = text;
	return 0;
}
