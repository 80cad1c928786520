/*
 * devices_admin: forget, pin and unpin (see devices_admin.h).
 */
#include "devices_admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "devices_int.h"
#include "devices_share.h"
#include "log.h"
#include "text.h"

const char *
devices_admin_op_name(enum devices_admin_op op)
{
	switch (op) {
	case DEVICES_ADMIN_FORGET:
		return "forget";
	case DEVICES_ADMIN_PIN:
		return "pin";
	case DEVICES_ADMIN_UNPIN:
		return "unpin";
	}
	return "?";
}

static bool
parse_addr(const char *text, struct devices_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, text, ip->addr) == 1) {
		ip->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, ip->addr) == 1) {
		/* an IPv4-mapped address is the IPv4 one, as the table keys it */
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(ip->addr, mapped, 12) == 0) {
			memmove(ip->addr, ip->addr + 12, 4);
			memset(ip->addr + 4, 0, 12);
			ip->family = AF_INET;
		} else {
			ip->family = AF_INET6;
		}
		return true;
	}
	return false;
}

static void
sockaddr_of(const struct devices_ip *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (ip->family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, ip->addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, ip->addr, 16);
	}
}

/* The key of the device behind ip. */
static void
key_of_addr(const struct config *cfg, const struct devices_sources *src,
            const struct devices_ip *ip, char key[DEVICES_KEY_MAX])
{
	struct sockaddr_storage ss;
	struct mac m;
	sockaddr_of(ip, &ss);
	identify_key(cfg, src, (const struct sockaddr *)&ss, NULL, key, &m);
}

static void
mac_key(const struct mac *m, char key[DEVICES_KEY_MAX])
{
	char t[MAC_STRLEN];
	snprintf(key, DEVICES_KEY_MAX, "mac:%s", mac_format(m, t));
}

/* A whole MAC (48 bits) in any spelling mac_parse reads. */
static bool
parse_mac(const char *text, struct mac *m)
{
	if (strchr(text, '/') != NULL)
		return false;
	return mac_parse(text, strlen(text), m) == 0 && !mac_is_zero(m);
}

int
devices_admin_key(const struct config *cfg, const struct devices_sources *src, const char *target,
                  char key[DEVICES_KEY_MAX], struct devices_ip *addr)
{
	struct devices_ip ip;
	struct mac m;
	char t[INET6_ADDRSTRLEN];

	memset(addr, 0, sizeof(*addr));
	if (strncmp(target, "mac:", 4) == 0) {
		if (!parse_mac(target + 4, &m))
			return -EINVAL;
		mac_key(&m, key);
		return 0;
	}
	if (strncmp(target, "ip:", 3) == 0) {
		if (!parse_addr(target + 3, &ip))
			return -EINVAL;
		identify_ip_text(&ip, t, sizeof(t));
		snprintf(key, DEVICES_KEY_MAX, "ip:%s", t);
		return 0;
	}
	if (parse_addr(target, &ip)) {
		key_of_addr(cfg, src, &ip, key);
		*addr = ip;
		return 0;
	}
	/* a 12-digit name ("aabbccddeeff") reads as a MAC: inventory names rarely look so */
	if (parse_mac(target, &m) && strlen(target) >= 12) {
		mac_key(&m, key);
		return 0;
	}
	for (size_t i = 0; i < cfg->devices.ninventory; i++) {
		const struct config_device *d = &cfg->devices.inventory[i];
		if (d->name == NULL || strcmp(d->name, target) != 0)
			continue;
		if (!mac_is_zero(&d->mac)) {
			mac_key(&d->mac, key);
			return 0;
		}
		memset(&ip, 0, sizeof(ip));
		ip.family = (uint8_t)d->ip.family;
		memcpy(ip.addr, d->ip.addr, 16);
		key_of_addr(cfg, src, &ip, key);
		*addr = ip;
		return 0;
	}
	return -EINVAL;
}

bool
devices_admin_matches(const struct devices_record *r, const char *target,
                      const struct devices_ip *addr)
{
	if (addr->family != 0 && r->nips > 0 && r->ips[0].family == addr->family &&
	    memcmp(r->ips[0].addr, addr->addr, 16) == 0)
		return true;
	return r->inventory[0] != '\0' && strcmp(r->inventory, target) == 0;
}

static bool
printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

int
devices_admin_check(const struct config *cfg, const struct devices_admin_req *req, char *err,
                    size_t size)
{
	char safe[IDENTITY_NAME_MAX];

	if (req->target[0] == '\0') {
		snprintf(err, size, "no device given");
		return -EINVAL;
	}
	if (req->op != DEVICES_ADMIN_PIN)
		return 0;
	if (req->vendor[0] == '\0' && req->group[0] == '\0') {
		snprintf(err, size, "pin: give a vendor, a group or both");
		return -EINVAL;
	}
	if (!printable(req->vendor)) {
		snprintf(err, size, "pin: the vendor holds control characters");
		return -EINVAL;
	}
	if (req->group[0] == '\0')
		return 0;
	for (size_t i = 0; i < cfg->ngroups; i++)
		if (strcmp(cfg->groups[i].name, req->group) == 0)
			return 0;
	snprintf(err, size, "pin: unknown group '%s' (not in the configuration's groups)",
	         text_safe(safe, sizeof(safe), req->group));
	return -EINVAL;
}

void
devices_admin_new_record(const char *key, int64_t now, struct devices_record *r)
{
	memset(r, 0, sizeof(*r));
	r->inv = -1;
	text_copy(r->key, sizeof(r->key), key);
	r->first_seen = r->last_seen = now;
	if (strncmp(key, "mac:", 4) == 0 && mac_parse(key + 4, strlen(key + 4), &r->mac) == 0) {
		r->has_mac = true;
		r->randomised = mac_is_randomised(&r->mac);
	} else if (strncmp(key, "ip:", 3) == 0 && parse_addr(key + 3, &r->ips[0])) {
		r->nips = 1;
	}
}

void
devices_admin_apply(const struct config *cfg, const struct devices_admin_req *req,
                    struct devices_record *r, char *evidence, size_t size)
{
	char v[IDENTITY_VENDOR_MAX], g[IDENTITY_NAME_MAX];

	if (req->op == DEVICES_ADMIN_PIN) {
		if (req->vendor[0] != '\0')
			text_copy(r->pin_vendor, sizeof(r->pin_vendor), req->vendor);
		if (req->group[0] != '\0')
			text_copy(r->pin_group, sizeof(r->pin_group), req->group);
		text_copy(v, sizeof(v), r->pin_vendor);
		text_copy(g, sizeof(g), r->pin_group);
	} else {
		text_copy(v, sizeof(v), r->pin_vendor);
		text_copy(g, sizeof(g), r->pin_group);
		r->pin_vendor[0] = '\0';
		r->pin_group[0] = '\0';
	}
	identify_vendor(cfg, r);
	snprintf(evidence, size, "%s%s%s%s%s%sby uid %u", v[0] ? "vendor=" : "", v, v[0] ? " " : "",
	         g[0] ? "group=" : "", g, g[0] ? " " : "", (unsigned)req->uid);
}

void
devices_admin_forget_evidence(const struct devices_admin_req *req, const struct devices_record *r,
                              char *evidence, size_t size)
{
	if (r->vendor[0] != '\0')
		snprintf(evidence, size, "vendor=%s (%s) by uid %u", r->vendor,
		         identity_source_name(r->vendor_source) ? identity_source_name(r->vendor_source)
		                                                : "?",
		         (unsigned)req->uid);
	else
		snprintf(evidence, size, "by uid %u", (unsigned)req->uid);
}

/* The record target names in the table, or NULL; *key is its key (or the one it would have). */
static struct devices_record *
find(struct devices *d, const char *target, char key[DEVICES_KEY_MAX], struct devices_ip *addr)
{
	struct devices_record *r = devices_int_lookup(d, key), *best = NULL;
	if (r != NULL)
		return r;
	for (size_t i = 0; (r = devices_int_record(d, i)) != NULL; i++)
		if (devices_admin_matches(r, target, addr) &&
		    (best == NULL || r->last_seen > best->last_seen))
			best = r;
	if (best != NULL)
		text_copy(key, DEVICES_KEY_MAX, best->key);
	return best;
}

const char *
devices_int_next_group(struct devices *d, const struct devices_record *r)
{
	const struct policy *pol = devices_int_policy(d);
	struct policy_identity id;
	struct policy_decision dec;
	struct sockaddr_storage ss;

	if (r->nips == 0)
		return r->pin_group[0] != '\0' ? r->pin_group : r->group;
	sockaddr_of(&r->ips[0], &ss);
	identify_policy(devices_int_config(d), r, (const struct sockaddr *)&ss, &id);
	policy_decide(pol, &id, NULL, &dec);
	return policy_group_name(pol, dec.group);
}

int
devices_admin_run(struct devices *d, const struct devices_admin_req *req, char *msg, size_t size)
{
	const struct config *cfg = devices_int_config(d);
	char key[DEVICES_KEY_MAX], evidence[IDENTITY_EVIDENCE_MAX], safe[DEVICES_ADMIN_TARGET_MAX];
	char old_group[IDENTITY_NAME_MAX];
	struct devices_ip addr;
	int rc;

	if ((rc = devices_admin_check(cfg, req, msg, size)) != 0)
		return rc;
	/* the queries workers answered before this request count before it (devices_share.h) */
	devices_share_sync(d->share);
	text_safe(safe, sizeof(safe), req->target);
	if (devices_admin_key(cfg, devices_int_sources(d), req->target, key, &addr) != 0) {
		snprintf(msg, size,
		         "'%s' is not a MAC, an address, a device key or an inventory "
		         "name",
		         safe);
		return -EINVAL;
	}
	struct devices_record *r = find(d, req->target, key, &addr);
	if (r == NULL && req->op != DEVICES_ADMIN_PIN) {
		snprintf(msg, size, "no device '%s' (%s) in the table", safe, key);
		return -ENOENT;
	}
	if (req->op == DEVICES_ADMIN_FORGET) {
		devices_admin_forget_evidence(req, r, evidence, sizeof(evidence));
		text_copy(old_group, sizeof(old_group), r->group);
		struct devices_record copy = *r;
		if (devices_int_remove(d, r) != 0) {
			snprintf(msg, size, "out of memory");
			return -ENOMEM;
		}
		devices_int_event(d, "forget", &copy, old_group, NULL, evidence);
		devices_int_share(d, &copy, true);
		devices_share_publish(d->share); /* every worker, before the reply */
		log_info("devices: %s: forgotten (%s)", key, evidence);
		snprintf(msg, size, "forgot %s (%s)", key, evidence);
		return 0;
	}
	if (r == NULL) {
		r = devices_int_add(d, key);
		if (r == NULL) {
			snprintf(msg, size, "cannot add %s: the device table is full", key);
			return -ENOMEM;
		}
		struct devices_record fresh;
		devices_admin_new_record(key, r->first_seen, &fresh);
		*r = fresh;
	}
	text_copy(old_group, sizeof(old_group), r->group);
	devices_admin_apply(cfg, req, r, evidence, sizeof(evidence));
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	r->pin_at = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000; /* newest act wins */
	text_copy(r->group, sizeof(r->group), devices_int_next_group(d, r));
	devices_int_dirty(d, r);
	devices_int_share(d, r, false);
	devices_int_event(d, devices_admin_op_name(req->op), r, old_group, r->group, evidence);
	devices_share_publish(d->share); /* every worker, before the reply */
	log_info("devices: %s: %s (%s): vendor '%s', group '%s' from its next query", key,
	         req->op == DEVICES_ADMIN_PIN ? "pinned" : "unpinned", evidence, r->vendor,
	         r->group);
	const char *src = identity_source_name(r->vendor_source);
	snprintf(msg, size, "%s %s (%s): vendor %s%s%s%s, group %s",
	         req->op == DEVICES_ADMIN_PIN ? "pinned" : "unpinned", key, evidence,
	         r->vendor[0] ? r->vendor : "-", src ? " (" : "", src ? src : "", src ? ")" : "",
	         r->group[0] ? r->group : "-");
	return 0;
}
