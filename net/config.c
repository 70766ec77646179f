/*
 * config.c - read changelogd.conf into the command-line option table
 * (see config.h for the format).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config.h"

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* 1 on, 0 off, -1 neither. */
static int boolean(const char *v)
{
	static const char *const on[] = { "true", "yes", "on", "1" };
	static const char *const off[] = { "false", "no", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (!strcasecmp(v, on[i]))
			return 1;
		if (!strcasecmp(v, off[i]))
			return 0;
	}
	return -1;
}

static const struct option *find(const struct option *lo, const char *name)
{
	for (; lo->name; lo++)
		if (!strcmp(lo->name, name))
			return lo;
	return NULL;
}

static int listed(const char *const *names, const char *name)
{
	for (; names && *names; names++)
		if (!strcmp(*names, name))
			return 1;
	return 0;
}

static int read_file(struct cfg *c, const char *path, char *err, size_t errcap)
{
	FILE *f = fopen(path, "re");
	struct stat st;
	size_t n;

	if (!f) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		return errno == ENOENT ? CFG_ENOFILE : CFG_EBAD;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errcap, "%s: not a regular file", path);
		fclose(f);
		return CFG_EBAD;
	}
	if (st.st_size > CFG_MAX_BYTES) {
		snprintf(err, errcap, "%s: larger than %d bytes", path, CFG_MAX_BYTES);
		fclose(f);
		return CFG_EBAD;
	}
	c->text = malloc((size_t)st.st_size + 1);
	if (!c->text) {
		snprintf(err, errcap, "%s: out of memory", path);
		fclose(f);
		return CFG_EBAD;
	}
	n = fread(c->text, 1, (size_t)st.st_size, f);
	c->text[n] = '\0';
	if (ferror(f)) {
		snprintf(err, errcap, "%s: %s", path, strerror(errno));
		fclose(f);
		return CFG_EBAD;
	}
	fclose(f);
	if (strlen(c->text) != n) {
		snprintf(err, errcap, "%s: contains a NUL byte", path);
		return CFG_EBAD;
	}
	return 0;
}

int cfg_load(struct cfg *c, const char *path, const struct option *longopts,
	     const char *const *refused, cfg_apply_fn apply, void *ctx,
	     char *err, size_t errcap)
{
	char *line, *next;
	int lineno = 0, rc;

	c->text = NULL;
	rc = read_file(c, path, err, errcap);
	if (rc)
		return rc;
	for (line = c->text; line; line = next) {
		const struct option *o;
		const char *msg = NULL;
		char *name, *value = NULL, *sep;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		name = trim(line);
		if (*name == '\0' || *name == '#')
			continue;
		sep = name + strcspn(name, " \t=");
		if (*sep) {            /* "name = v", "name=v", "name v" */
			int eq = *sep == '=';
			char *rest = sep + 1;

			*sep = '\0';
			rest = trim(rest);
			if (!eq && *rest == '=')
				rest = trim(rest + 1);
			value = rest;
		}
		if (!strncmp(name, "--", 2)) {
			snprintf(err, errcap, "%s:%d: write \"%s\" without the leading --", path,
				 lineno, name + 2);
			return CFG_EBAD;
		}
		o = find(longopts, name);
		if (!o || listed(refused, name)) {
			snprintf(err, errcap, "%s:%d: %s \"%s\"", path, lineno,
				 o ? "not allowed in a config file:" : "unknown setting", name);
			return CFG_EBAD;
		}
		if (o->has_arg == no_argument) {
			int on = value && *value ? boolean(value) : 1;

			if (on < 0) {
				snprintf(err, errcap, "%s:%d: %s takes true or false, not \"%s\"",
					 path, lineno, name, value);
				return CFG_EBAD;
			}
			if (on)
				msg = apply(ctx, o->val, NULL);
		} else {
			if (!value || !*value) {
				snprintf(err, errcap, "%s:%d: %s needs a value", path, lineno, name);
				return CFG_EBAD;
			}
			msg = apply(ctx, o->val, value);
		}
		if (msg) {
			snprintf(err, errcap, "%s:%d: %s (got \"%s\")", path, lineno, msg,
				 value ? value : "");
			return CFG_EBAD;
		}
	}
	return 0;
}

void cfg_free(struct cfg *c)
{
	free(c->text);
	c->text = NULL;
}
