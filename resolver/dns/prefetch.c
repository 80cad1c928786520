/*
 * prefetch: one slot per refresh in flight; see prefetch.h.
 */
#include "prefetch.h"

#include <errno.h>
#include <string.h>

#include "cache.h"
#include "check.h"
#include "server_int.h"

static void
on_prefetch_done(void *arg, int status, const uint8_t *reply, size_t len,
		 const struct sockaddr *from)
{
	struct prefetch_slot *p = arg;
	struct server *s = p->srv;

	(void)from;
	p->wait = NULL;
	p->busy = false;
	INSIST(s->prefetch.busy > 0 && s->limits.nupstream > 0);
	s->prefetch.busy--;
	s->limits.nupstream--;
	if (status != 0 || s->cache == NULL)
		return;	/* failed or cancelled (stopping): the entry expires as it would have */
	struct dnsmsg_answer *a = &s->answer;
	if (dnsmsg_answer_from_reply(reply, len, p->dq.do_bit, s->answer_wire, DNSMSG_MAX_LEN,
				     a) == 0 &&
	    a->cacheable)
		cache_insert(s->cache, &p->dq.qname, p->dq.qtype, p->dq.qclass,
			     cache_key_bits(&p->dq), a, uv_now(s->loop));
}

int
prefetch_start(struct server *s, const struct dnsmsg_query *q, bool mark)
{
	struct prefetch *pf = &s->prefetch;

	if (pf->busy >= PREFETCH_MAX || s->state != SERVER_RUNNING || s->upstream == NULL ||
	    s->limits.nupstream >= s->limits.upstream)
		return -EBUSY;
	struct prefetch_slot *p = &pf->slot[0];
	while (p->busy)
		p++;
	p->srv = s;
	p->dq = *q;
	int err = upstream_query(s->upstream, &p->dq, on_prefetch_done, p, &p->wait);
	if (err != 0)
		return err;
	p->busy = true;
	pf->busy++;
	s->limits.nupstream++;
	if (mark)
		cache_prefetch_started(s->cache);
	return 0;
}
