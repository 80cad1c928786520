/*
 * policy: the compiled, immutable, refcounted policy and its evaluation.
 *
 * policy_new() takes a loaded config, reads every list file, and builds:
 *   - the server.allow prefix set (who may query at all),
 *   - client -> group (groups tried in config order, the first match applies; a group without
 *     selectors matches every client),
 *   - one name table for all lists: each distinct name is stored once with the set of lists that
 *     contain it; a lookup probes the query name's suffixes from the longest down, so its cost
 *     depends on the number of labels, never on the number or size of the lists.
 * Evaluation functions are pure, allocate nothing and are safe to call from any thread.
 * Reload builds a new policy on the side and swaps the pointer; a query keeps a reference to the
 * policy it started with.
 */
#ifndef VETO_POLICY_H
#define VETO_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "diag.h"
#include "identity.h"
#include "mac.h"
#include "names.h"

struct policy;

/* Why a verdict was reached. */
enum policy_reason {
	POLICY_REASON_NO_GROUP = 0,	/* the client matched no group: forwarded unfiltered */
	POLICY_REASON_NO_MATCH,		/* group matched, name in none of its lists: forward */
	POLICY_REASON_ALLOW_LIST,	/* name (or a parent) in one of the group's allow lists */
	POLICY_REASON_BLOCK_LIST,	/* name (or a parent) in one of the group's block lists */
	POLICY_REASON_DEFAULT_DENY,	/* group has default: deny and no allow list matched */
};

struct policy_verdict {
	bool blocked;
	enum policy_reason reason;
	enum config_action action;	/* when blocked: list action > group action > block.action;
					   never INHERIT when blocked */
	int group;			/* group index, -1 = none */
	int list;			/* deciding list index (config.lists), -1 = none */
	int rule_label;			/* the matching entry is the suffix of the name starting at
					   this label (names_suffix_to_text), -1 = none */
};

/*
 * Compiles cfg. Reads every list file; lines that are skipped are counted per list and the first
 * few reported to diag as notes ("FILE:LINE: skipped: reason"); a missing or unreadable file is
 * an error. Warnings (e.g. a list used by no group) go to diag too.
 * On success (return 0) *out holds one reference and the policy takes ownership of cfg.
 * On failure (-EINVAL for content errors, -ENOMEM, -errno for I/O) cfg stays the caller's.
 */
int policy_new(struct config *cfg, struct diag *diag, struct policy **out);

/*
 * Loads the configuration at path and compiles it, as veto check, veto serve and veto explain
 * do: config_load() then policy_new(). When the configuration has errors, the files of the lists
 * defined without error are still read, so that their problems (unreadable files, skipped lines)
 * are reported with the others; the result stays the configuration's error. The entries added to
 * diag are sorted: those located in path by position, then those of other files in reading
 * order. 0 and *out (one reference), or the error of config_load() or policy_new().
 */
int policy_load(const char *path, struct diag *diag, struct policy **out);
struct policy *policy_ref(struct policy *p);
void policy_unref(struct policy **p);	/* frees at zero, and sets *p = NULL */

const struct config *policy_config(const struct policy *p);

/* True when the client address may query at all (server.allow). sa is AF_INET or AF_INET6;
 * IPv4-mapped IPv6 addresses are treated as IPv4. */
bool policy_client_allowed(const struct policy *p, const struct sockaddr *sa);

/* The group index that applies to the client, or -1 when none matches. */
int policy_client_group(const struct policy *p, const struct sockaddr *sa);

/* Which selector of a group matched. */
enum policy_selector {
	POLICY_SEL_NONE = 0,		/* no group */
	POLICY_SEL_ALL,			/* a group without selectors: every client */
	POLICY_SEL_CLIENTS,
	POLICY_SEL_MACS,
	POLICY_SEL_VENDORS,
	POLICY_SEL_HOSTNAMES,
	POLICY_SEL_DEVICES,
	POLICY_SEL_TAGS,
	POLICY_SEL_RANDOMISED,
	POLICY_SEL_PINNED,		/* the identity's pinned group */
};

struct policy_group_match {
	enum policy_selector selector;
	int value;			/* index of the matching value in that selector, -1 = n/a */
};

/*
 * The group that applies to the identified client: groups are tried in config order and the
 * first whose any selector matches applies. Pure, allocates nothing, O(selectors of the groups
 * before the one found). why (may be NULL) says which selector matched. -1 when none matches.
 * policy_client_group(p, sa) equals this with an identity holding only sa.
 */
int policy_client_group_ex(const struct policy *p, const struct policy_identity *id,
			   struct policy_group_match *why);
const char *policy_selector_name(enum policy_selector s); /* "clients", "macs", ..., "all" */

/*
 * Behavioural signatures (devices.signatures): the index into config.devices.signatures of the
 * vendor whose names cover the canonical query name (the most specific entry wins; between
 * vendors listing the same entry, the first in the file), or -1. Pure, O(labels).
 */
int policy_signature(const struct policy *p, const struct names_name *qname);

/*
 * The whole decision for one query, as the daemon answers it and `veto explain` shows it.
 */
struct policy_decision {
	bool allowed;			/* server.allow admits the client; when false the client
					   is refused and the rest says nothing */
	int group;			/* -1 = none: forwarded unfiltered */
	struct policy_group_match why;	/* which selector of the group matched */
	struct policy_verdict v;	/* for the query name; when blocked, v.action is final
					   (list action > group action > block.action) */
};

/*
 * Decides a query from the identified client id (id->sa required, everything else optional:
 * an identity holding only the address is a client without device identity): server.allow,
 * then the group (policy_client_group_ex), then the verdict for qname (policy_check; NULL:
 * no question, group only). Pure, allocates nothing, O(selectors + labels).
 */
void policy_decide(const struct policy *p, const struct policy_identity *id,
		   const struct names_name *qname, struct policy_decision *d);

/*
 * The verdict for a CNAME/DNAME target of an answer to a query decided as d: blocked only by a
 * block list of d's group, so that a default-deny group does not lose every answer whose chain
 * leaves the names it allows. True when the answer must be blocked (v says how).
 */
bool policy_decide_target(const struct policy *p, const struct policy_decision *d,
			  const struct names_name *target, struct policy_verdict *v);

/* Evaluates a canonical query name for a group (-1 = no group). Never fails. */
void policy_check(const struct policy *p, int group, const struct names_name *qname,
		  struct policy_verdict *v);

const char *policy_group_name(const struct policy *p, int group); /* NULL for -1 */
const char *policy_list_name(const struct policy *p, int list);   /* NULL for -1 */

/* Figures for `veto check`. */
struct policy_list_stats {
	size_t entries;		/* names accepted (after dedup inside this list) */
	size_t skipped;		/* lines skipped */
};
void policy_list_stats(const struct policy *p, int list, struct policy_list_stats *st);
size_t policy_names(const struct policy *p);	/* distinct names over all lists */
size_t policy_memory(const struct policy *p);	/* bytes held by the compiled policy */

#endif
