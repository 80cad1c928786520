/*
 * config: the typed, immutable configuration model (format v1) and its only loader.
 *
 * config_load() reads one YAML file (config_yaml.c is the only file that includes <yaml.h>),
 * checks it (config_check.c), fills in defaults and resolves relative paths against the folder
 * of the file. It does not read list files: policy_new() does (see policy.h).
 * Once loaded, a struct config is never modified; it is owned by whoever loaded it, or by the
 * policy compiled from it.
 */
#ifndef VETO_CONFIG_H
#define VETO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "diag.h"
#include "identity.h"
#include "mac.h"

/* How a blocked query is answered. CONFIG_ACTION_INHERIT = not set here, use the outer one. */
enum config_action {
	CONFIG_ACTION_INHERIT = 0,
	CONFIG_ACTION_SINKHOLE,
	CONFIG_ACTION_NXDOMAIN,
	CONFIG_ACTION_NODATA,
	CONFIG_ACTION_REFUSED,
};

enum config_log_queries {
	CONFIG_LOG_ALL = 0,
	CONFIG_LOG_BLOCKED,
	CONFIG_LOG_NONE,
};

/* Where a value came from, for messages produced after loading (e.g. by policy_new). */
struct config_loc {
	int line, col;
};

/* An IPv4 or IPv6 prefix. IPv4 is stored as family AF_INET with addr[0..3]. Host bits are 0. */
struct config_cidr {
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];
	uint8_t prefix;		/* 0..32 or 0..128 */
	struct config_loc loc;
};

/* How an upstream server is asked. */
enum config_transport {
	CONFIG_TRANSPORT_DNS = 0,	/* plain DNS: UDP, TCP after a truncated reply */
	CONFIG_TRANSPORT_TLS,		/* DNS over TLS (RFC 7858): "tls://host[:853][#name]" */
	CONFIG_TRANSPORT_HTTPS,		/* DNS over HTTPS (RFC 8484):
					   "https://host[:443]/path[#bootstrap address]" */
};

/* A socket address (listen address or upstream server). */
struct config_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char *text;		/* owned, as written ("127.0.0.1:5353", "[::1]:5353",
				   "tls://192.0.2.1:853#dns.example") */
	struct config_loc loc;
	/* upstream.servers only (zero for listen addresses) */
	enum config_transport transport;
	char *tls_name;		/* owned, lowercase; TLS: the name the server's certificate must
				   match (and the SNI), NULL: its IP address must be in the
				   certificate's IP SANs; HTTPS: the URL's host when it is a name
				   (ss is then the bootstrap address) */
	char *url;		/* owned; HTTPS: the URL without its #fragment, else NULL */
};

struct config_list {
	char *name;		/* owned */
	char **files;		/* owned, absolute or relative to the current dir (already resolved) */
	struct config_loc *file_locs;
	size_t nfiles;
	char **domains;		/* owned, inline names as written */
	struct config_loc *domain_locs;
	size_t ndomains;
	enum config_action action; /* INHERIT unless the list fixes its own action */
	/* urls: downloaded by the daemon (resolver/lists/); policy_new reads the cached copy
	 * cache_files[i] of urls[i] (a missing copy is an empty source, with a warning) */
	char **urls;		/* owned, http:// or https:// */
	struct config_loc *url_locs;
	size_t nurls;
	char **cache_files;	/* owned, nurls entries: state_dir/lists/NAME.I.txt */
	uint32_t refresh_s;	/* refresh: default 86400 (24h), 1 s .. 30 days */
	uint32_t timeout_s;	/* timeout: default 60, 1 s .. 1 h: one whole download */
	uint32_t max_size;	/* max_size: bytes, default 64 MiB, 1 KiB .. 1 GiB */
	char *ca_file;		/* owned, resolved; NULL = the system's CA store */
	struct config_loc loc;
	bool valid;		/* its own definition had no error (every list of a loaded config;
				   in a partial one, the lists whose files may still be read) */
};

struct config_group {
	char *name;		/* owned */
	struct config_cidr *clients;
	size_t nclients;	/* 0 = matches every client (a catch-all group) */
	size_t *block;		/* indexes into config.lists */
	size_t nblock;
	size_t *allow;		/* indexes into config.lists */
	size_t nallow;
	bool default_deny;	/* default: deny */
	enum config_action action; /* INHERIT = block.action */
	struct config_loc loc;
	/* device selectors (macs, vendors, hostnames, devices, tags, randomised_mac); a group
	 * matches when any selector matches, and a group without any selector (clients or these)
	 * matches every client */
	struct mac_prefix *macs;	/* exact addresses (48 bits) or prefixes */
	size_t nmacs;
	char **vendors;		/* owned; manufacturer or attributed vendor, case-insensitive */
	size_t nvendors;
	char **hostnames;	/* owned; hostglob patterns */
	size_t nhostnames;
	char **devices;		/* owned; devices.inventory names */
	size_t ndevices;
	char **tags;		/* owned; inventory tags */
	size_t ntags;
	bool has_randomised;	/* randomised_mac was written */
	bool randomised;	/* its value */
};

/* devices.inventory[i] */
struct config_device {
	char *name;		/* owned, unique */
	struct mac mac;
	bool has_ip;
	struct config_cidr ip;	/* a host address (prefix 32 or 128) when has_ip */
	char *owner;		/* owned, or NULL */
	char *vendor;		/* owned, or NULL: the vendor as the organisation knows it */
	char **tags;		/* owned */
	size_t ntags;
	struct config_loc loc;
};

/* Lease file formats (devices.dhcp_leases[i].format); parsed by resolver/devices/leases.c */
enum leases_format {
	LEASES_DNSMASQ,
	LEASES_DHCPD,
	LEASES_KEA,
};

/* devices.dhcp_leases[i] */
struct config_leases {
	char *file;		/* owned, resolved */
	enum leases_format format;
	struct config_loc loc;
};

/* devices.signatures.VENDOR: names whose queries reveal the vendor of a device */
struct config_signature {
	char *vendor;		/* owned, as written ("Xiaomi"); an OS family for strength os */
	enum identity_strength strength;
	size_t *lists;		/* indexes into config.lists */
	size_t nlists;
	char **domains;		/* owned, inline names */
	struct config_loc *domain_locs;
	size_t ndomains;
	struct config_loc loc;
};

/* devices.hostname_vendors[i] */
struct config_hostname_vendor {
	char *pattern;		/* owned, hostglob pattern */
	char *vendor;		/* owned */
	struct config_loc loc;
};

/* Defaults of the server.tcp_* keys (what the daemon did before they were keys). */
#define CONFIG_TCP_IDLE_TIMEOUT_MS	10000
#define CONFIG_TCP_CONNECTIONS		256
#define CONFIG_TCP_PIPELINE		32
/* Defaults of the per-client limits (server.*): high enough that a LAN of ordinary devices never
 * reaches them, low enough that one client cannot take every descriptor or query slot. */
#define CONFIG_QUERIES_PER_CLIENT	  256
#define CONFIG_QUERIES_PER_PREFIX	  1024
#define CONFIG_TCP_CONNECTIONS_PER_CLIENT 64
#define CONFIG_ERROR_REPLIES_PER_SECOND	  10
/* cache.serve_stale: the default (RFC 8767 suggests 1 to 3 days) and the most accepted */
#define CONFIG_SERVE_STALE_S		  86400
#define CONFIG_SERVE_STALE_MAX_S	  (30u * 86400)

/* server.rate_limit.action: what a query beyond its client's rate gets. */
enum config_rate_action {
	CONFIG_RATE_TRUNCATE = 0,	/* UDP: empty reply with TC=1 (the client retries over TCP,
					   which is not rate limited); the default */
	CONFIG_RATE_REFUSED,		/* REFUSED */
	CONFIG_RATE_DROP,		/* no reply */
};

/* http.users[i] and http.tokens[i]: who may use the HTTP listener, and as what. */
enum config_http_role {
	CONFIG_HTTP_READ = 1,	/* reads pages and /metrics */
	CONFIG_HTTP_ADMIN = 2,	/* also acts (forget, pin, unpin) */
};

struct config_http_user {
	char *name;		/* owned, unique among users */
	char *password;		/* owned, a crypt(3) hash: yescrypt "$y$..." or SHA-512 "$6$..." */
	enum config_http_role role;
	struct config_loc loc;
};

struct config_http_token {
	char *name;		/* owned, unique among tokens (what the log says) */
	uint8_t sha256[32];	/* SHA-256 of the token as sent in Authorization: Bearer */
	enum config_http_role role;
	struct config_loc loc;
};

enum config_udp_sockets {
	CONFIG_UDP_SHARED = 0,
	CONFIG_UDP_PER_WORKER,
};

struct config {
	char *path;		/* owned, the file as given */
	char *dir;		/* owned, its folder: the base of relative paths */

	struct {
		struct config_addr *listen;
		size_t nlisten;
		struct config_cidr *allow;
		size_t nallow;
		/* TCP (RFC 7766); a reload applies them to connections accepted after it */
		uint32_t tcp_idle_timeout_ms;	/* default 10000, 100..3600000 */
		uint32_t tcp_connections;	/* default 256, 1..65536: open at once (all
						   listeners) */
		uint32_t tcp_pipeline;		/* default 32, 1..16384: queries in flight per
						   connection */
		/* event loops serving DNS, each on its own thread with its own TCP sockets,
		 * cache and upstream sockets; 0 = one per CPU. Default 0, 0..64. Read at start
		 * only */
		uint32_t workers;
		/* their UDP sockets (read at start only): one per address, read by the main loop
		 * and by others while it falls behind (default), or one per worker and address
		 * (SO_REUSEPORT: the kernel spreads clients over them) */
		enum config_udp_sockets udp_sockets;
		uint32_t tcp_connections_per_client; /* default 64, 1..65536: open at once from
							one address */
		/* queries waiting for upstream at once, per client address and per /24 (IPv4)
		 * or /56 (IPv6); beyond: SERVFAIL at once */
		uint32_t queries_per_client;	/* default 256, 1..65536 */
		uint32_t queries_per_prefix;	/* default 1024, 1..65536 */
		/* FORMERR/NOTIMP/BADVERS replies per second per client address (burst twice
		 * that); beyond: no reply. 0 = no limit. Default 10, 0..1000000 */
		uint32_t error_replies_per_second;
		/* token buckets per client address and per prefix; a rate of 0 is off (the
		 * default); a burst of 0 means twice the rate */
		struct {
			uint32_t queries_per_second;		/* 0..1000000 */
			uint32_t burst;				/* 0..1000000 */
			uint32_t prefix_queries_per_second;	/* 0..1000000 */
			uint32_t prefix_burst;			/* 0..1000000 */
			enum config_rate_action action;
		} rate_limit;
		/* started as root, `veto serve` drops to this user (and group) once its sockets
		 * are bound; NULL = "veto" when that user exists. Ignored when not root */
		char *user;			/* owned; "root" = stay root */
		char *group;			/* owned; NULL = the user's primary group */
	} server;

	struct {
		struct config_addr *servers;	/* resolved addresses; port 53 when not given */
		size_t nservers;
		bool resolv_conf;		/* "resolv.conf" was listed: read /etc/resolv.conf */
		char *resolv_conf_path;		/* owned, default "/etc/resolv.conf" */
		uint32_t timeout_ms;		/* one attempt; default 1500 */
		char *tls_ca;			/* owned, PEM file of the CAs that DNS-over-TLS
						   servers' certificates must chain to; NULL: the
						   system store (UPSTREAM_TLS_CA_DEFAULT) */
	} upstream;

	struct {
		uint32_t entries;		/* default 100000, 0 = off */
		uint32_t min_ttl;		/* default 0 */
		uint32_t max_ttl;		/* default 86400 */
		uint32_t serve_stale_s;		/* RFC 8767: an expired answer is kept and served
						   when every upstream attempt fails, until this long
						   past its TTL; 0 = off; default 86400 (1d) */
		bool prefetch;			/* refresh popular answers before they expire;
						   default true */
	} cache;

	struct config_block {
		enum config_action action;	/* never INHERIT; default sinkhole */
		uint8_t ipv4[4];		/* default 0.0.0.0 */
		uint8_t ipv6[16];		/* default :: */
		uint32_t ttl;			/* default 60 */
	} block;

	struct config_list *lists;		/* in file order */
#define CONFIG_LIST_REFRESH_S	86400
#define CONFIG_LIST_TIMEOUT_S	60
#define CONFIG_LIST_MAX_SIZE	(64u << 20)
#define CONFIG_LISTS_CACHE_DIR	"lists"	/* under state_dir: the downloaded copies */
	size_t nlists;
	struct config_group *groups;		/* in file order: the first match applies */
	size_t ngroups;

	struct {
		enum config_log_queries queries; /* default all */
		char *file;			 /* owned; "-" = standard output (default
						    unless database is set), NULL = none */
		char *database;			 /* owned; SQLite query store, NULL = none
						    (default); relative paths resolve against
						    state_dir */
		uint32_t retention_days;	 /* default 90, 0 = keep forever */
		uint32_t evidence_buffer_mb;	 /* blocked records waiting beyond the ring
						    take at most this much memory; default
						    64, 1-65536 */
	} log;

	char *state_dir;			/* owned; default "/var/lib/veto"; relative paths
						   resolve against the config folder */

	/* device identity (the devices: section); every source is optional */
	struct {
		bool enabled;			/* a devices: section was written */
		struct config_device *inventory;
		size_t ninventory;
		struct config_leases *leases;	/* dhcp_leases */
		size_t nleases;
		bool arp;			/* read arp_file (and IPv6 neighbours); default true */
		char *arp_file;			/* owned; default "/proc/net/arp" */
		uint32_t arp_refresh_s;		/* default 30 */
		uint32_t max_devices;		/* the device table's bound; default 65536 */
		uint32_t address_ttl_s;		/* a device known only by its address is forgotten
						   after this long without a query; default 14400 */
		struct config_cidr *trusted;	/* trusted_forwarders: EDNS MAC and ECS honoured */
		size_t ntrusted;
		char *oui_dir;			/* owned; default "/usr/share/ieee-data"; NULL = off */
		struct config_signature *signatures; /* default: the shipped table */
		size_t nsignatures;
		struct config_hostname_vendor *hostname_vendors; /* default: hostglob's table */
		size_t nhostname_vendors;
	} devices;

	/* the HTTP listener (/metrics and the web console); off when nlisten is 0 (default).
	 * A non-loopback listen address needs users or tokens (checked) */
	struct {
		struct config_addr *listen;	/* "127.0.0.1:9153" (a port is needed: config_lint.c) */
		size_t nlisten;
		struct config_http_user *users;
		size_t nusers;
		struct config_http_token *tokens;
		size_t ntokens;
	} http;

	/* the shared store (the store: section); off when postgresql is NULL (default): the query
	 * log, device events and the device table then stay in SQLite under state_dir */
	struct {
		char *postgresql;		/* owned; a libpq connection string or URI, without a
						   password (checked) */
		char *instance;			/* owned; this instance's name on its rows; NULL:
						   the host name (the daemon fills it) */
		char *password_file;		/* owned; resolved path; NULL: libpq's own sources
						   (PGPASSWORD, ~/.pgpass, PGPASSFILE) */
		uint32_t spool_mb;		/* records kept on local disk while the database is
						   unreachable; default 1024 */
		uint32_t resync_s;		/* full device-table resync period; default 60 */
	} store;
};

/*
 * Loads and checks path. Every problem is added to diag (all at once, with FILE:LINE:COL and the
 * key path). Returns 0 and sets *out when there is no error (warnings allowed); -EINVAL when the
 * file has errors; -errno when it cannot be read (also reported in diag). *out is written only on
 * success; the caller owns it and frees it with config_free().
 */
int config_load(const char *path, struct diag *diag, struct config **out);
/*
 * The same, and when the file has errors but was read and parsed as YAML, *partial (written only
 * then) receives the configuration as far as it could be checked, so that the list files of the
 * lists defined without error (config_list.valid) can still be read and their problems reported
 * with the others (policy_load). A partial configuration is for that only: it may be incomplete
 * or inconsistent. The caller frees it with config_free().
 */
int config_load_partial(const char *path, struct diag *diag, struct config **out,
			struct config **partial);
void config_free(struct config **cfg);

/*
 * Reports to diag, as a warning, a devices.oui.dir whose registry files cannot be read (the
 * daemon then knows no vendor from MAC prefixes). Nothing when identity or the registry is off.
 * policy_load calls it: it reads the file system.
 */
void config_lint_oui(const struct config *cfg, struct diag *diag);
/*
 * Reports to diag, as warnings, a state_dir (when device identity or log.database uses it),
 * log.database or log.file that this process's real uid could not create or write: a read-only
 * root, a missing volume, the wrong owner. policy_load calls it: it reads the file system.
 */
void config_lint_paths(const struct config *cfg, struct diag *diag);

const char *config_action_name(enum config_action a);
const char *config_http_role_name(enum config_http_role r); /* "read", "admin" */
/* True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool config_addr_is_loopback(const struct sockaddr_storage *ss); /* "sinkhole", ...; "inherit" */
/* The candidate closest to word (a few edits at most, as `veto check` suggests keys, lists and
 * vendors), or NULL: the "did you mean" of the commands. cands: n strings, borrowed. */
const char *config_suggest(const char *word, const char *const *cands, size_t n);
/* Parses "127.0.0.1:53", "[::1]:5353", "192.0.2.1" (default_port used). 0 or -EINVAL. */
int config_parse_addr(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
		      socklen_t *len);
/* Parses an upstream server: "192.0.2.1", "192.0.2.1:5353", "[2001:db8::1]:53" (plain DNS, port
 * 53 by default), "tls://192.0.2.1", "tls://[2001:db8::1]:8853#dns.example" (DNS over TLS, port
 * 853 by default; #name: the certificate's name), "https://192.0.2.1/dns-query",
 * "https://dns.example:8443/dns-query#192.0.2.1" (DNS over HTTPS, port 443 by default; a host
 * name needs its address after '#', Veto never resolves it). Fills ss, len, transport, tls_name
 * and url (owned by the caller; text is not set). 0, -EINVAL with *why (static text) set, or
 * -ENOMEM. */
int config_parse_upstream(const char *text, struct config_addr *out, const char **why);
/* Parses "10.0.0.0/8", "::1/128", "10.9.9.9" (host prefix). Host bits must be 0. 0 or -EINVAL. */
int config_parse_cidr(const char *text, struct config_cidr *out, const char **why);
/* Writes the prefix as "10.0.0.0/8" or "2001:db8::/32" (64 octets are always enough). */
void config_cidr_to_text(const struct config_cidr *c, char *buf, size_t size);

#endif
