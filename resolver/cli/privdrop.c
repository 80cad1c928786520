/*
 * privdrop: giving up root after binding (see privdrop.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"
#include "privdrop.h"

#define PRIVDROP_DEFAULT_USER "veto"

/* path (not followed if a symbolic link) owned by the user from now on, when it is not. */
static int
hand_over(const char *path, const struct privdrop *pd)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return -errno;
	if (st.st_uid == pd->uid && st.st_gid == pd->gid)
		return 0;
	if (lchown(path, pd->uid, pd->gid) != 0) {
		int rc = -errno;
		log_error("'%s': cannot give it to user '%s': %s", path, pd->user, strerror(-rc));
		return rc;
	}
	log_info("'%s': now owned by user '%s'", path, pd->user);
	return 0;
}

/* state_dir is Veto's own folder: created when missing, given to the user, and so is every
 * file in it that belongs to root (left by a run as root or a command run as root). */
static int
prepare_state_dir(const char *dir, const struct privdrop *pd)
{
	int rc = fileio_mkdir_p(dir, 0750);

	if (rc == 0)
		rc = hand_over(dir, pd);
	if (rc != 0) {
		log_error("state_dir '%s': cannot prepare it for user '%s': %s", dir, pd->user,
		          strerror(-rc));
		return rc;
	}
	DIR *d = opendir(dir);
	if (d == NULL)
		return -errno;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
		    S_ISDIR(st.st_mode) || S_ISLNK(st.st_mode) || st.st_uid != 0)
			continue;
		if (fchownat(dirfd(d), e->d_name, pd->uid, pd->gid, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = -errno;
			log_error("'%s/%s': cannot give it to user '%s': %s", dir, e->d_name,
			          pd->user, strerror(-rc));
			break;
		}
	}
	closedir(d);
	return rc;
}

/* A file the daemon writes outside state_dir (log.file, log.database): its folder is created
 * for the user when missing (an existing folder is left alone: it may be /var/log), and the
 * file is given to the user when root owns it. */
static int
prepare_file(const char *path, const struct privdrop *pd)
{
	char dir[4096];
	struct stat st;

	if (path == NULL || strcmp(path, "-") == 0)
		return 0;
	if ((size_t)snprintf(dir, sizeof(dir), "%s", path) >= sizeof(dir))
		return -ENAMETOOLONG;
	char *slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (stat(dir, &st) != 0 && errno == ENOENT) {
			int rc = fileio_mkdir_p(dir, 0750);
			if (rc == 0)
				rc = hand_over(dir, pd);
			if (rc != 0) {
				log_error("'%s': cannot create it for user '%s': %s", dir, pd->user,
				          strerror(-rc));
				return rc;
			}
		}
	}
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == 0)
		return hand_over(path, pd);
	return 0;
}

static int
prepare_files(const struct config *cfg, const struct privdrop *pd)
{
	int rc = prepare_state_dir(cfg->state_dir, pd);

	if (rc == 0)
		rc = prepare_file(cfg->log.file, pd);
	if (rc == 0 && cfg->log.database != NULL) {
		char side[4096];
		rc = prepare_file(cfg->log.database, pd);
		for (int i = 0; rc == 0 && i < 2; i++) {
			if ((size_t)snprintf(side, sizeof(side), "%s%s", cfg->log.database,
			                     i == 0 ? "-wal" : "-shm") < sizeof(side))
				rc = prepare_file(side, pd);
		}
	}
	return rc;
}

static int
lookup(const struct config *cfg, const char *user, struct privdrop *pd)
{
	const char *group = cfg->server.group;
	bool named = user != NULL;

	if (!named)
		user = PRIVDROP_DEFAULT_USER;
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		if (named) {
			log_error("server.user: no user '%s' on this host", user);
			return -ENOENT;
		}
		log_error("started as root and there is no user '%s' to drop to: create it "
		          "(adduser --system --group %s), or set server.user to another user, or "
		          "to root to stay root (not recommended)",
		          user, user);
		return -EPERM;
	}
	if ((size_t)snprintf(pd->user, sizeof(pd->user), "%s", pw->pw_name) >= sizeof(pd->user)) {
		log_error("server.user: name too long: '%s'", user);
		return -ENAMETOOLONG;
	}
	pd->uid = pw->pw_uid;
	pd->gid = pw->pw_gid;
	if (group != NULL) {
		struct group *gr = getgrnam(group);
		if (gr == NULL) {
			log_error("server.group: no group '%s' on this host", group);
			return -ENOENT;
		}
		pd->gid = gr->gr_gid;
	}
	return 0;
}

int
privdrop_begin(const struct config *cfg, const char *user, struct privdrop *pd)
{
	struct privdrop p = {0};
	int rc;

	if (user == NULL)
		user = cfg->server.user;
	if (geteuid() != 0) {
		struct passwd *me = getpwuid(geteuid());
		if (user != NULL && (me == NULL || strcmp(me->pw_name, user) != 0))
			log_warning("server.user '%s' not applied: not started as root (running as "
			            "uid %u)",
			            user, (unsigned)geteuid());
		*pd = p;
		return 0;
	}
	if (user != NULL && strcmp(user, "root") == 0) {
		log_info("running as root (server.user: root)");
		*pd = p;
		return 0;
	}
	if ((rc = lookup(cfg, user, &p)) != 0)
		return rc;
	if (p.uid == 0) {
		log_error("server.user '%s' has uid 0: write root to stay root", p.user);
		return -EPERM;
	}
	if ((rc = prepare_files(cfg, &p)) != 0)
		return rc;
	if (initgroups(p.user, p.gid) != 0) {
		rc = -errno;
		log_error("server.user '%s': cannot set its groups: %s", p.user, strerror(-rc));
		return rc;
	}
	/* From here on files are created and opened as the user, by this thread and by every
	 * thread it starts; binding privileged ports still works (effective uid 0). */
	(void)setfsgid(p.gid);
	(void)setfsuid(p.uid);
	if ((uid_t)setfsuid((uid_t)-1) != p.uid || (gid_t)setfsgid((gid_t)-1) != p.gid) {
		log_error("server.user '%s': cannot take its file-system ids", p.user);
		return -EPERM;
	}
	p.active = true;
	*pd = p;
	return 0;
}

/* True when the calling thread holds no capability at all. */
static bool
no_capabilities(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];

	memset(d, 0, sizeof(d));
	if (syscall(SYS_capget, &h, d) != 0)
		return false;
	for (size_t i = 0; i < _LINUX_CAPABILITY_U32S_3; i++) {
		if (d[i].effective != 0 || d[i].permitted != 0 || d[i].inheritable != 0)
			return false;
	}
	return true;
}

int
privdrop_end(const struct privdrop *pd)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (!pd->active)
		return 0;
	/* glibc applies these to every thread of the process (the query log writer too) */
	if (setresgid(pd->gid, pd->gid, pd->gid) != 0 ||
	    setresuid(pd->uid, pd->uid, pd->uid) != 0) {
		int rc = -errno;
		log_error("cannot drop to user '%s': %s", pd->user, strerror(-rc));
		return rc;
	}
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != pd->uid ||
	    eu != pd->uid || su != pd->uid || rg != pd->gid || eg != pd->gid || sg != pd->gid ||
	    setuid(0) == 0 || setgid(0) == 0 || !no_capabilities()) {
		log_error("dropping to user '%s' did not take: refusing to serve", pd->user);
		return -EPERM;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		log_warning("cannot set no_new_privs: %s", strerror(errno));
	log_info("running as user '%s' (uid %u, gid %u)", pd->user, (unsigned)pd->uid,
	         (unsigned)pd->gid);
	return 0;
}
