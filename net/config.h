/*
 * config.h - changelogd.conf: the long flags of changelogd, one a line.
 *
 *   # a comment (only at the start of a line)
 *   data = /var/lib/changelogd
 *   listen = 0.0.0.0:8443
 *   plain
 *   nosync = false
 *
 * A flag without a value is on; true/yes/on/1 and false/no/off/0 also work.
 *
 * A name is a long flag without its "--" (the same table getopt uses), so
 * the file cannot drift from the command line. Unknown names, a value on
 * a flag that takes none, a missing value, and values the flag rejects are
 * errors "FILE:LINE: ..." naming the first bad line. A name given twice:
 * the later line wins, as on the command line. docs/operations.md.
 */
#ifndef CL_NET_CONFIG_H
#define CL_NET_CONFIG_H

#include <getopt.h>
#include <stddef.h>

/* The default file changelogd reads when there is no --config. */
#define CFG_DEFAULT_PATH "/etc/changelogd/changelogd.conf"
/* Larger files are refused (a config is a few hundred bytes). */
#define CFG_MAX_BYTES (1024 * 1024)

/* Apply the option getopt would return as `code` with `value` (NULL for a
 * flag); NULL if accepted, else a static message ("--rate wants 1..10"). */
typedef const char *(*cfg_apply_fn)(void *ctx, int code, const char *value);

struct cfg {
	char *text;                /* the file; the values passed to apply point
	                              into it and live until cfg_free */
};

/*
 * Read path and apply each line through apply. Names in `refused` (a
 * NULL-terminated list, e.g. "config", "help") are errors in a file.
 * Returns 0, CFG_ENOFILE when the file does not exist (err says so), or
 * CFG_EBAD with "path:line: message" (or "path: message") in err.
 */
enum { CFG_ENOFILE = 1, CFG_EBAD = 2 };
int cfg_load(struct cfg *c, const char *path, const struct option *longopts,
	     const char *const *refused, cfg_apply_fn apply, void *ctx,
	     char *err, size_t errcap);
void cfg_free(struct cfg *c);

#endif
