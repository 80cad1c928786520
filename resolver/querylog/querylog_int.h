/*
 * querylog_int: what querylog.c shares with its tests only.
 */
#ifndef VETO_QUERYLOG_INT_H
#define VETO_QUERYLOG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "querylog.h"

/* querylog_new with a ring of 'capacity' records (rounded up to a power of two, >= 2). */
int querylog_new_capacity(const struct config *cfg, size_t capacity, struct querylog **out);

/* Stops (paused = true) or resumes the writer. Pausing returns once the writer has parked:
 * from then on nothing leaves the ring until it is resumed (or freed: free always drains). */
void querylog_test_pause(struct querylog *ql, bool paused);

/* Number of records currently in the ring. */
size_t querylog_pending(const struct querylog *ql);

/* Chunks the evidence overflow holds beyond its first one. */
size_t querylog_test_overflow_chunks(const struct querylog *ql);

/* True while settings given to querylog_reconfigure() wait for the writer to apply them. */
bool querylog_test_reconfiguring(const struct querylog *ql);

#endif
