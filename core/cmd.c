/*
 * cmd.c - commands: check a user's request against the projection and turn
 * it into events, or refuse it with a stable code and a short sentence.
 * docs/protocol.md "Commands" lists every command, its parameters, its
 * events, its reply and its refusals; this file implements that list.
 *
 * Why it is shaped so:
 *  - Checks run in one fixed order, so the same request always gets the
 *    same refusal: the caller is a known user (unauthorized), admin-only
 *    commands need an admin (forbidden), the params are well-typed and within
 *    limits (bad_request / too_large), the things they name exist
 *    (not_found), the caller may touch them (forbidden), expected_version
 *    matches (conflict), and finally the change itself is valid
 *    (invalid_transition, conflict, bad_request for a no-op).
 *  - The events produced are exactly what proj_apply accepts in the current
 *    state (ids = count + 1, status_from = the current status, ...); the
 *    tests apply every produced event and expect success.
 *  - Zero copy: event strings point into params (jansson strings are valid
 *    UTF-8; only an embedded NUL has to be refused here).
 *  - Core has no randomness: createUser / issueToken take the fresh token and
 *    its hash from the caller (struct cmd_ctx).
 */
#include "proj_internal.h"

#include <stdio.h>
#include <string.h>

static const char *const code_names[CMD__COUNT] = {
	[CMD_OK] = "ok",
	[CMD_BAD_REQUEST] = "bad_request",
	[CMD_UNAUTHORIZED] = "unauthorized",
	[CMD_FORBIDDEN] = "forbidden",
	[CMD_NOT_FOUND] = "not_found",
	[CMD_INVALID_TRANSITION] = "invalid_transition",
	[CMD_CONFLICT] = "conflict",
	[CMD_TOO_LARGE] = "too_large",
	[CMD_RATE_LIMITED] = "rate_limited",
	[CMD_UNAVAILABLE] = "unavailable",
	[CMD_INTERNAL] = "internal",
};

const char *cmd_code_name(int code)
{
	return code >= 0 && code < CMD__COUNT ? code_names[code] : NULL;
}

/* ---- parameters ---------------------------------------------------------- */

/*
 * A string parameter. Absent (or null) and not required: *out = {NULL, 0},
 * *given = 0. Refusals: wrong type / missing / NUL / shorter than min
 * (bad_request), longer than max bytes (too_large).
 */
static int p_str(json_t *params, const char *key, int required, size_t min, size_t max,
		 struct cl_str *out, int *given, struct cl_fail *fail)
{
	json_t *v = proj_i_param(params, key);
	size_t n;

	*out = (struct cl_str){ NULL, 0 };
	if (given)
		*given = 0;
	if (!v) {
		if (required)
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" is required", key);
		return 0;
	}
	if (!json_is_string(v))
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" must be a string", key);
	n = json_string_length(v);
	if (n > max)
		return proj_i_fail(fail, CMD_TOO_LARGE, "\"%s\" is longer than %zu bytes", key, max);
	if (memchr(json_string_value(v), '\0', n))
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" must not contain NUL characters",
				   key);
	if (n < min)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" must not be empty", key);
	out->p = json_string_value(v);
	out->n = n;
	if (given)
		*given = 1;
	return 0;
}

/* A positive integer parameter; *out = 0 when absent and not required. */
static int p_id(json_t *params, const char *key, int required, uint64_t *out,
		struct cl_fail *fail)
{
	json_t *v = proj_i_param(params, key);

	*out = 0;
	if (!v) {
		if (required)
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" is required", key);
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" must be a positive integer", key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* An enum by name (kind, status, role); *out = 0 when absent and not required. */
static int p_enum(json_t *params, const char *key, int required,
		  int (*parse)(const char *, size_t), const char *names, int *out,
		  struct cl_fail *fail)
{
	json_t *v = proj_i_param(params, key);

	*out = 0;
	if (!v) {
		if (required)
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" is required (%s)", key,
					   names);
		return 0;
	}
	if (!json_is_string(v) || !(*out = parse(json_string_value(v), json_string_length(v))))
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" must be %s", key, names);
	return 0;
}

#define KINDS "one of fix, change, feature"
#define STATUSES "one of open, resolved, cancelled, reopened"
#define ROLES "admin or member"

/* "user": a name or an id, resolved to an existing user. */
static int p_user(const struct proj *p, json_t *params, uint64_t *out, struct cl_fail *fail)
{
	json_t *v = proj_i_param(params, "user");

	if (!v)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"user\" is required (a name or an id)");
	if (json_is_string(v)) {
		size_t n = json_string_length(v);

		if (n > CL_MAX_NAME || memchr(json_string_value(v), '\0', n))
			return proj_i_fail(fail, CMD_NOT_FOUND, "that user does not exist");
		*out = proj_i_user_find(p, json_string_value(v), n);
		if (!*out)
			return proj_i_fail(fail, CMD_NOT_FOUND, "user %s does not exist",
					   json_string_value(v));
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"user\" must be a name or an id");
	*out = (uint64_t)json_integer_value(v);
	if (!proj_i_user(p, *out))
		return proj_i_fail(fail, CMD_NOT_FOUND, "user %llu does not exist",
				   (unsigned long long)*out);
	return 0;
}

/* ---- helpers for the commands ------------------------------------------- */

struct cmd_run {
	const struct proj *p;
	json_t *params;
	const struct cmd_ctx *ctx;
	struct cmd_result *res;
	const struct puser *actor;
};

/* The next event of the result, stamped with ts, actor and type. */
static struct event *new_event(struct cmd_run *r, int type)
{
	struct event *ev = &r->res->ev[r->res->n++];

	memset(ev, 0, sizeof *ev);
	ev->type = (uint32_t)type;
	ev->version = (uint32_t)ev_current_version(type);
	ev->ts = r->ctx->now;
	ev->actor = r->ctx->actor;
	return ev;
}

static int set_reply(struct cmd_run *r, json_t *reply)
{
	r->res->reply = reply;
	return reply ? 0 : proj_i_fail(&r->res->fail, CMD_INTERNAL, "out of memory");
}

static int known(struct cmd_run *r, const char *const *allowed)
{
	return proj_i_params_known(r->params, allowed, &r->res->fail);
}

/* The entry named by "entry", which must exist. */
static int get_entry(struct cmd_run *r, uint64_t *id, const struct pentry **e)
{
	int rc = p_id(r->params, "entry", 1, id, &r->res->fail);

	if (rc)
		return rc;
	if (!(*e = proj_i_entry(r->p, *id)))
		return proj_i_fail(&r->res->fail, CMD_NOT_FOUND, "entry %llu does not exist",
				   (unsigned long long)*id);
	return 0;
}

static int may_change(struct cmd_run *r, const struct pentry *e)
{
	return e->author == r->ctx->actor || r->actor->role == ROLE_ADMIN;
}

static int check_version(struct cmd_run *r, uint64_t id, const struct pentry *e)
{
	uint64_t want;
	int rc = p_id(r->params, "expected_version", 0, &want, &r->res->fail);

	if (rc)
		return rc;
	if (want && want != e->version)
		return proj_i_fail(&r->res->fail, CMD_CONFLICT,
				   "entry %llu is at version %u, not %llu; reload it and retry",
				   (unsigned long long)id, e->version, (unsigned long long)want);
	return 0;
}

/* ---- entry commands --------------------------------------------------------- */

static int c_create_entry(struct cmd_run *r)
{
	static const char *const allowed[] = { "title", "body", "kind", NULL };
	struct cl_fail *f = &r->res->fail;
	struct cl_str title, body;
	struct event *ev;
	int kind, rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_str(r->params, "title", 1, 1, CL_MAX_TITLE, &title, NULL, f)) ||
	    (rc = p_str(r->params, "body", 0, 0, CL_MAX_BODY, &body, NULL, f)) ||
	    (rc = p_enum(r->params, "kind", 1, cl_kind_parse, KINDS, &kind, f)))
		return rc;
	ev = new_event(r, EV_ENTRY_CREATED);
	ev->ids.entry = r->p->nentries + 1;
	ev->title = title;
	ev->body = body.p ? body : (struct cl_str){ "", 0 };
	ev->kind = (uint8_t)kind;
	return set_reply(r, json_pack("{s:I}", "entry", (json_int_t)ev->ids.entry));
}

static int same(struct cl_str a, const char *b, size_t bn)
{
	return a.n == bn && (bn == 0 || memcmp(a.p, b, bn) == 0);
}

static int c_edit_entry(struct cmd_run *r)
{
	static const char *const allowed[] = { "entry", "title", "body", "kind",
					       "expected_version", NULL };
	struct cl_fail *f = &r->res->fail;
	const struct pentry *e;
	struct cl_str title, body;
	int has_title, has_body, kind, rc;
	struct event *ev;
	uint64_t id;

	if ((rc = known(r, allowed)) ||
	    (rc = p_str(r->params, "title", 0, 1, CL_MAX_TITLE, &title, &has_title, f)) ||
	    (rc = p_str(r->params, "body", 0, 0, CL_MAX_BODY, &body, &has_body, f)) ||
	    (rc = p_enum(r->params, "kind", 0, cl_kind_parse, KINDS, &kind, f)) ||
	    (rc = get_entry(r, &id, &e)))
		return rc;
	if (!may_change(r, e))
		return proj_i_fail(f, CMD_FORBIDDEN,
				   "only the entry's author or an admin can edit it");
	if ((rc = check_version(r, id, e)))
		return rc;
	has_title = has_title && !same(title, proj_i_title(e), e->title_n);
	has_body = has_body && !same(body, proj_i_body(e), e->body_n);
	if (kind == e->kind)
		kind = 0;
	if (!has_title && !has_body && !kind)
		return proj_i_fail(f, CMD_BAD_REQUEST, "the edit changes nothing in entry %llu",
				   (unsigned long long)id);
	ev = new_event(r, EV_ENTRY_EDITED);
	ev->ids.entry = id;
	if (has_title) {
		ev->has_title = 1;
		ev->title = title;
	}
	if (has_body) {
		ev->has_body = 1;
		ev->body = body.p ? body : (struct cl_str){ "", 0 };
	}
	if (kind) {
		ev->has_kind = 1;
		ev->kind = (uint8_t)kind;
	}
	return set_reply(r, json_pack("{s:I,s:I}", "entry", (json_int_t)id, "version",
				      (json_int_t)e->version + 1));
}

static int c_set_status(struct cmd_run *r)
{
	static const char *const allowed[] = { "entry", "status", "expected_version", NULL };
	struct cl_fail *f = &r->res->fail;
	const struct pentry *e;
	struct event *ev;
	uint64_t id;
	int to, rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_enum(r->params, "status", 1, cl_status_parse, STATUSES, &to, f)) ||
	    (rc = get_entry(r, &id, &e)))
		return rc;
	if (!may_change(r, e))
		return proj_i_fail(f, CMD_FORBIDDEN,
				   "only the entry's author or an admin can change its status");
	if ((rc = check_version(r, id, e)))
		return rc;
	if (!proj_i_transition_ok(e->status, to))
		return proj_i_fail(f, CMD_INVALID_TRANSITION, "entry %llu is %s; it cannot become %s",
				   (unsigned long long)id, cl_status_name(e->status),
				   cl_status_name(to));
	ev = new_event(r, EV_ENTRY_STATUS_SET);
	ev->ids.entry = id;
	ev->status_from = e->status;
	ev->status_to = (uint8_t)to;
	return set_reply(r, json_pack("{s:I,s:s}", "entry", (json_int_t)id, "status",
				      cl_status_name(to)));
}

static int c_add_comment(struct cmd_run *r)
{
	static const char *const allowed[] = { "entry", "parent", "body", NULL };
	struct cl_fail *f = &r->res->fail;
	const struct pcomment *parent = NULL;
	const struct pentry *e;
	struct cl_str body;
	struct event *ev;
	uint64_t id, pid;
	int rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_str(r->params, "body", 1, 1, CL_MAX_COMMENT, &body, NULL, f)) ||
	    (rc = p_id(r->params, "parent", 0, &pid, f)) ||
	    (rc = get_entry(r, &id, &e)))
		return rc;
	if (pid) {
		if (!(parent = proj_i_comment(r->p, pid)))
			return proj_i_fail(f, CMD_NOT_FOUND, "comment %llu does not exist",
					   (unsigned long long)pid);
		if (parent->entry != id)
			return proj_i_fail(f, CMD_BAD_REQUEST,
					   "comment %llu belongs to entry %u, not to entry %llu",
					   (unsigned long long)pid, parent->entry,
					   (unsigned long long)id);
		if (parent->depth + 1 >= CL_MAX_DEPTH)
			return proj_i_fail(f, CMD_BAD_REQUEST,
					   "replies can nest at most %d levels deep", CL_MAX_DEPTH);
	}
	ev = new_event(r, EV_COMMENT_ADDED);
	ev->ids.comment = r->p->ncomments + 1;
	ev->ids.entry = id;
	ev->ids.parent = pid;
	ev->body = body;
	return set_reply(r, json_pack("{s:I,s:I}", "comment", (json_int_t)ev->ids.comment,
				      "entry", (json_int_t)id));
}

/*
 * editComment / deleteComment: the comment named by "comment", which its
 * author or an admin may change while it is not deleted.
 */
static int get_own_comment(struct cmd_run *r, uint64_t *id, const struct pcomment **c)
{
	struct cl_fail *f = &r->res->fail;
	int rc = p_id(r->params, "comment", 1, id, f);

	if (rc)
		return rc;
	if (!(*c = proj_i_comment(r->p, *id)))
		return proj_i_fail(f, CMD_NOT_FOUND, "comment %llu does not exist",
				   (unsigned long long)*id);
	if ((*c)->author != r->ctx->actor && r->actor->role != ROLE_ADMIN)
		return proj_i_fail(f, CMD_FORBIDDEN,
				   "only the comment's author or an admin can change it");
	if ((*c)->deleted)
		return proj_i_fail(f, CMD_BAD_REQUEST, "comment %llu was deleted",
				   (unsigned long long)*id);
	return 0;
}

static int c_edit_comment(struct cmd_run *r)
{
	static const char *const allowed[] = { "comment", "body", NULL };
	struct cl_fail *f = &r->res->fail;
	const struct pcomment *c;
	struct cl_str body;
	struct event *ev;
	uint64_t id;
	int rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_str(r->params, "body", 1, 1, CL_MAX_COMMENT, &body, NULL, f)) ||
	    (rc = get_own_comment(r, &id, &c)))
		return rc;
	if (body.n == c->body_n && memcmp(body.p, c->body, body.n) == 0)
		return proj_i_fail(f, CMD_BAD_REQUEST, "the edit changes nothing");
	ev = new_event(r, EV_COMMENT_EDITED);
	ev->ids.comment = id;
	ev->ids.entry = c->entry;
	ev->body = body;
	return set_reply(r, json_pack("{s:I,s:I}", "comment", (json_int_t)id, "entry",
				      (json_int_t)c->entry));
}

static int c_delete_comment(struct cmd_run *r)
{
	static const char *const allowed[] = { "comment", NULL };
	const struct pcomment *c;
	struct event *ev;
	uint64_t id;
	int rc;

	if ((rc = known(r, allowed)) || (rc = get_own_comment(r, &id, &c)))
		return rc;
	ev = new_event(r, EV_COMMENT_DELETED);
	ev->ids.comment = id;
	ev->ids.entry = c->entry;
	return set_reply(r, json_pack("{s:I,s:I}", "comment", (json_int_t)id, "entry",
				      (json_int_t)c->entry));
}

/*
 * markRead {entry, upto?} / markAllRead {upto?}: the caller has read one
 * entry, or everything, up to seq upto (default: the last seq). Refused
 * when it would move no mark on (core/read.c says why that bounds them).
 */
static int mark_read(struct cmd_run *r, int one)
{
	static const char *const allowed_one[] = { "entry", "upto", NULL };
	static const char *const allowed_all[] = { "upto", NULL };
	struct cl_fail *f = &r->res->fail;
	uint64_t entry = 0, upto;
	struct event *ev;
	int rc;

	if ((rc = known(r, one ? allowed_one : allowed_all)) ||
	    (one && (rc = p_id(r->params, "entry", 1, &entry, f))) ||
	    (rc = p_id(r->params, "upto", 0, &upto, f)))
		return rc;
	if (!upto)
		upto = proj_seq(r->p);
	if ((rc = proj_i_read_judge(r->p, r->ctx->actor, entry, upto, f)))
		return rc;
	ev = new_event(r, EV_READ_MARKED);
	ev->ids.entry = entry;
	ev->upto = upto;
	return set_reply(r, one ? json_pack("{s:I,s:I}", "entry", (json_int_t)entry, "upto",
					    (json_int_t)upto)
				: json_pack("{s:I}", "upto", (json_int_t)upto));
}

static int c_mark_read(struct cmd_run *r)
{
	return mark_read(r, 1);
}

static int c_mark_all_read(struct cmd_run *r)
{
	return mark_read(r, 0);
}

/* ---- users and tokens ---------------------------------------------------------- */

/* The token.issued event for user uid with the caller's fresh token. */
static int issue(struct cmd_run *r, uint64_t uid, struct cl_str label, uint64_t *token)
{
	struct event *ev;

	if (!r->ctx->new_token || !r->ctx->new_token_hash)
		return proj_i_fail(&r->res->fail, CMD_INTERNAL, "no token was generated");
	if (proj_i_token_find(r->p, r->ctx->new_token_hash))
		return proj_i_fail(&r->res->fail, CMD_INTERNAL, "the new token is already in use");
	ev = new_event(r, EV_TOKEN_ISSUED);
	ev->ids.user = uid;
	ev->ids.token = r->p->ntokens + 1;
	ev->label = label;
	memcpy(ev->token_hash, r->ctx->new_token_hash, EV_HASH_LEN);
	*token = ev->ids.token;
	r->res->secret = json_pack("{s:s}", "token", r->ctx->new_token);
	return r->res->secret ? 0 : proj_i_fail(&r->res->fail, CMD_INTERNAL, "out of memory");
}

static int c_create_user(struct cmd_run *r)
{
	static const char *const allowed[] = { "name", "role", NULL };
	struct cl_fail *f = &r->res->fail;
	struct cl_str name;
	struct event *ev;
	uint64_t uid, tid;
	int role, rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_str(r->params, "name", 1, 1, CL_MAX_NAME, &name, NULL, f)) ||
	    (rc = p_enum(r->params, "role", 0, cl_role_parse, ROLES, &role, f)))
		return rc;
	if (!cl_name_ok(name.p, name.n))
		return proj_i_fail(f, CMD_BAD_REQUEST,
				   "a user name uses only letters, digits, '.', '_' and '-', "
				   "does not start with '-' and is not only dots");
	if (proj_i_user_find(r->p, name.p, name.n))
		return proj_i_fail(f, CMD_CONFLICT, "user %s already exists", name.p);
	ev = new_event(r, EV_USER_CREATED);
	uid = ev->ids.user = r->p->nusers + 1;
	ev->name = name;
	ev->role = (uint8_t)(role ? role : ROLE_MEMBER);
	if ((rc = issue(r, uid, CL_STR("initial"), &tid)))
		return rc;
	return set_reply(r, json_pack("{s:I,s:I}", "user", (json_int_t)uid, "token_id",
				      (json_int_t)tid));
}

static int c_set_role(struct cmd_run *r)
{
	static const char *const allowed[] = { "user", "role", NULL };
	struct cl_fail *f = &r->res->fail;
	const struct puser *u;
	struct event *ev;
	uint64_t uid;
	int role, rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_enum(r->params, "role", 1, cl_role_parse, ROLES, &role, f)) ||
	    (rc = p_user(r->p, r->params, &uid, f)))
		return rc;
	u = proj_i_user(r->p, uid);
	if (u->role == role)
		return proj_i_fail(f, CMD_BAD_REQUEST, "%s is already %s", u->name,
				   role == ROLE_ADMIN ? "an admin" : "a member");
	if (u->role == ROLE_ADMIN && r->p->admins <= 1)
		return proj_i_fail(f, CMD_CONFLICT,
				   "%s is the last admin; make another admin first", u->name);
	ev = new_event(r, EV_USER_ROLE_SET);
	ev->ids.user = uid;
	ev->role = (uint8_t)role;
	return set_reply(r, json_pack("{s:I,s:s}", "user", (json_int_t)uid, "role",
				      cl_role_name(role)));
}

static int c_issue_token(struct cmd_run *r)
{
	static const char *const allowed[] = { "user", "label", NULL };
	struct cl_fail *f = &r->res->fail;
	struct cl_str label;
	uint64_t uid, tid;
	int rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_str(r->params, "label", 0, 0, CL_MAX_LABEL, &label, NULL, f)) ||
	    (rc = p_user(r->p, r->params, &uid, f)) ||
	    (rc = issue(r, uid, label.p ? label : (struct cl_str){ "", 0 }, &tid)))
		return rc;
	return set_reply(r, json_pack("{s:I}", "token_id", (json_int_t)tid));
}

static int c_revoke_token(struct cmd_run *r)
{
	static const char *const allowed[] = { "token", NULL };
	struct cl_fail *f = &r->res->fail;
	const struct ptoken *t;
	struct event *ev;
	uint64_t tid;
	int rc;

	if ((rc = known(r, allowed)) || (rc = p_id(r->params, "token", 1, &tid, f)))
		return rc;
	if (!(t = proj_i_token(r->p, tid)))
		return proj_i_fail(f, CMD_NOT_FOUND, "token %llu does not exist",
				   (unsigned long long)tid);
	if (t->user != r->ctx->actor && r->actor->role != ROLE_ADMIN)
		return proj_i_fail(f, CMD_FORBIDDEN,
				   "only an admin or the token's owner can revoke it");
	if (t->revoked)
		return proj_i_fail(f, CMD_CONFLICT, "token %llu is already revoked",
				   (unsigned long long)tid);
	ev = new_event(r, EV_TOKEN_REVOKED);
	ev->ids.user = t->user;
	ev->ids.token = tid;
	return set_reply(r, json_pack("{s:I}", "token_id", (json_int_t)tid));
}

/* ---- webhooks ------------------------------------------------------------------ */

/*
 * "events": absent (every type) or a non-empty array of distinct event type
 * names. *types is the canonical list for the event ("a,b" in type order,
 * "" for every type), written into buf.
 */
static int p_types(json_t *params, char *buf, size_t cap, struct cl_str *types,
		   struct cl_fail *f)
{
	json_t *v = proj_i_param(params, "events"), *it;
	uint32_t mask = 0;
	size_t i, o = 0;

	*types = (struct cl_str){ "", 0 };
	if (!v)
		return 0;
	if (!json_is_array(v) || json_array_size(v) == 0)
		return proj_i_fail(f, CMD_BAD_REQUEST, "\"events\" must be a non-empty array "
				   "of event types (omit it for every type)");
	if (json_array_size(v) >= EV__COUNT)
		return proj_i_fail(f, CMD_BAD_REQUEST, "\"events\" names more types than "
				   "there are (%d)", EV__COUNT - 1);
	json_array_foreach(v, i, it) {
		int t = json_is_string(it) ? ev_type_parse(json_string_value(it),
							   json_string_length(it)) : EV_NONE;

		if (t == EV_NONE)
			return proj_i_fail(f, CMD_BAD_REQUEST, "\"events\"[%zu] is not an event "
					   "type (docs/events.md lists them)", i);
		if (mask & (1u << t))
			return proj_i_fail(f, CMD_BAD_REQUEST, "\"events\" names %s twice",
					   ev_type_name(t));
		mask |= 1u << t;
	}
	for (int t = EV_NONE + 1; t < EV__COUNT; t++) {
		const char *name = ev_type_name(t);

		if (!(mask & (1u << t)))
			continue;
		CL_ASSERT(o + strlen(name) + 2 <= cap);
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", o ? "," : "", name);
	}
	*types = (struct cl_str){ buf, o };
	return 0;
}

static int c_create_webhook(struct cmd_run *r)
{
	static const char *const allowed[] = { "url", "events", NULL };
	struct cl_fail *f = &r->res->fail;
	char types_buf[CL_MAX_TYPES + 1];
	struct cl_str url, types;
	const char *why;
	json_t *reply;
	struct event *ev;
	int rc;

	if ((rc = known(r, allowed)) ||
	    (rc = p_str(r->params, "url", 1, 1, CL_MAX_URL, &url, NULL, f)) ||
	    (rc = p_types(r->params, types_buf, sizeof types_buf, &types, f)))
		return rc;
	if ((why = cl_url_check(url.p, url.n)))
		return proj_i_fail(f, CMD_BAD_REQUEST, "%s", why);
	if (r->p->live_webhooks >= CL_MAX_WEBHOOKS)
		return proj_i_fail(f, CMD_CONFLICT, "%d webhooks are configured, the most there "
				   "may be; delete one first", CL_MAX_WEBHOOKS);
	for (uint32_t i = 0; i < r->p->nwebhooks; i++) {
		const struct pwebhook *w = &r->p->webhooks[i];

		if (w->url && w->url_n == url.n && memcmp(w->url, url.p, url.n) == 0)
			return proj_i_fail(f, CMD_CONFLICT, "webhook %u already posts to this URL",
					   i + 1);
	}
	if (!r->ctx->new_token_hash)
		return proj_i_fail(f, CMD_INTERNAL, "no webhook nonce was generated");
	/* the event's types point into the reply, which outlives the append */
	reply = json_pack("{s:I,s:s%}", "webhook", (json_int_t)r->p->nwebhooks + 1, "events",
			  types.n ? types.p : "all", (size_t)(types.n ? types.n : 3));
	if ((rc = set_reply(r, reply)))
		return rc;
	ev = new_event(r, EV_WEBHOOK_CREATED);
	ev->ids.webhook = r->p->nwebhooks + 1;
	ev->url = url;
	ev->types = types.n ? (struct cl_str){ json_string_value(json_object_get(reply, "events")),
					      types.n } : types;
	memcpy(ev->token_hash, r->ctx->new_token_hash, EV_HASH_LEN);
	return 0;
}

static int c_delete_webhook(struct cmd_run *r)
{
	static const char *const allowed[] = { "webhook", NULL };
	struct cl_fail *f = &r->res->fail;
	struct event *ev;
	uint64_t id;
	int rc;

	if ((rc = known(r, allowed)) || (rc = p_id(r->params, "webhook", 1, &id, f)))
		return rc;
	if (id > r->p->nwebhooks)
		return proj_i_fail(f, CMD_NOT_FOUND, "webhook %llu does not exist",
				   (unsigned long long)id);
	if (!r->p->webhooks[id - 1].url)
		return proj_i_fail(f, CMD_CONFLICT, "webhook %llu is already deleted",
				   (unsigned long long)id);
	ev = new_event(r, EV_WEBHOOK_DELETED);
	ev->ids.webhook = id;
	return set_reply(r, json_pack("{s:I}", "webhook", (json_int_t)id));
}

/* ---- dispatch --------------------------------------------------------------- */

static const struct {
	const char *name;
	int admin;                 /* admin only */
	int (*run)(struct cmd_run *r);
} commands[] = {
	{ "createEntry", 0, c_create_entry },
	{ "editEntry", 0, c_edit_entry },
	{ "setStatus", 0, c_set_status },
	{ "addComment", 0, c_add_comment },
	{ "editComment", 0, c_edit_comment },
	{ "deleteComment", 0, c_delete_comment },
	{ "markRead", 0, c_mark_read },
	{ "markAllRead", 0, c_mark_all_read },
	{ "createUser", 1, c_create_user },
	{ "setRole", 1, c_set_role },
	{ "issueToken", 1, c_issue_token },
	{ "revokeToken", 0, c_revoke_token },
	{ "createWebhook", 1, c_create_webhook },
	{ "deleteWebhook", 1, c_delete_webhook },
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static int find_command(const char *op)
{
	for (size_t i = 0; op && i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, op) == 0)
			return (int)i;
	return -1;
}

int cmd_is_command(const char *op)
{
	return find_command(op) >= 0;
}

int cmd_exec(const struct proj *p, const char *op, json_t *params,
	     const struct cmd_ctx *ctx, struct cmd_result *res)
{
	struct cmd_run r = { p, params, ctx, res, NULL };
	json_t *empty = NULL;
	int i, rc;

	if (!res)
		return CL_EINVAL;
	memset(res, 0, sizeof *res);
	if (!p || !ctx)
		return proj_i_fail(&res->fail, CMD_INTERNAL, "bad call");
	if ((i = find_command(op)) < 0)
		return proj_i_fail(&res->fail, CMD_BAD_REQUEST, "unknown command \"%.60s\"",
				   op ? op : "");
	if (!(r.actor = proj_i_user(p, ctx->actor)))
		return proj_i_fail(&res->fail, CMD_UNAUTHORIZED,
				   "you are not signed in as a known user");
	if (commands[i].admin && r.actor->role != ROLE_ADMIN)
		return proj_i_fail(&res->fail, CMD_FORBIDDEN, "only an admin can %s",
				   commands[i].name);
	if (!params || json_is_null(params)) {
		if (!(r.params = empty = json_object()))
			return proj_i_fail(&res->fail, CMD_INTERNAL, "out of memory");
	} else if (!json_is_object(params)) {
		return proj_i_fail(&res->fail, CMD_BAD_REQUEST, "params must be an object");
	}
	rc = commands[i].run(&r);
	json_decref(empty);
	if (rc < 0) {
		json_decref(res->reply);
		json_decref(res->secret);
		res->reply = res->secret = NULL;
		res->n = 0;
	}
	return rc;
}

void cmd_result_release(struct cmd_result *res)
{
	if (!res)
		return;
	json_decref(res->reply);
	json_decref(res->secret);
	res->reply = res->secret = NULL;
	res->n = 0;
}
