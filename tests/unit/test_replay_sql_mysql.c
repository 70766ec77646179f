/* test_replay_sql_mysql.c - replay/sql_mysql.c without a server: the
 * mysql:// URL parser (escapes, optional parts, socket parameter, errors)
 * and a connection failure's message. The server side is covered by
 * tests/integration/test_replay_mariadb.py against a real mariadbd. */
#include "harness.h"

#include "../../replay/replay.h"

static void t_full_url(void)
{
	struct replay_mysql_cfg c;
	char err[256];

	memset(&c, 0, sizeof c);
	CHECK_EQ_INT(replay_mysql_parse_url("mysql://rp:p%40ss%20w%3Ard@db.example:3307/clog",
					    &c, err, sizeof err), 0);
	CHECK(!strcmp(c.user, "rp") && !strcmp(c.password, "p@ss w:rd") && c.has_password);
	CHECK(!strcmp(c.host, "db.example") && c.port == 3307 && !strcmp(c.db, "clog"));
	CHECK(c.socket[0] == 0);
}

static void t_socket_and_optional_parts(void)
{
	struct replay_mysql_cfg c;
	char err[256];

	memset(&c, 0, sizeof c);
	c.defaults_file = "/etc/x.cnf";
	c.no_bulk = 1;
	CHECK_EQ_INT(replay_mysql_parse_url("mysql://root@localhost/d?socket=/tmp/my%20sock",
					    &c, err, sizeof err), 0);
	CHECK(!strcmp(c.user, "root") && !c.has_password && c.password[0] == 0);
	CHECK(!strcmp(c.socket, "/tmp/my sock") && c.port == 0 && !strcmp(c.db, "d"));
	CHECK(c.defaults_file && !strcmp(c.defaults_file, "/etc/x.cnf") && c.no_bulk == 1);
	memset(&c, 0, sizeof c);
	CHECK_EQ_INT(replay_mysql_parse_url("mysql://h/d", &c, err, sizeof err), 0);
	CHECK(c.user[0] == 0 && !strcmp(c.host, "h") && !strcmp(c.db, "d"));
	/* an empty password is a password */
	CHECK_EQ_INT(replay_mysql_parse_url("mysql://u:@h/d", &c, err, sizeof err), 0);
	CHECK(c.has_password && c.password[0] == 0);
	/* '@' in a password must be escaped, but the last '@' ends the credentials */
	CHECK_EQ_INT(replay_mysql_parse_url("mysql://u:a@b@h/d", &c, err, sizeof err), 0);
	CHECK(!strcmp(c.password, "a@b") && !strcmp(c.host, "h"));
}

static void t_bad_urls(void)
{
	static const char *const bad[] = {
		"postgres://u@h/d", "mysql://u@h", "mysql://u@h/", "mysql://u@h:0/d",
		"mysql://u@h:70000/d", "mysql://u@h:12x/d", "mysql://u@h/d?port=1",
		"mysql://u@h/d?socket", "mysql://u@h/d?socket=", "mysql://u%4@h/d",
		"mysql://u%00@h/d", "mysql://u@h/a`b", "mysql://u@h/a/b", "",
	};
	struct replay_mysql_cfg c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = 0;
		memset(&c, 0, sizeof c);
		CHECK_EQ_INT(replay_mysql_parse_url(bad[i], &c, err, sizeof err), CL_EUSAGE);
		CHECK(err[0] != 0);
	}
}

static void t_long_parts_refused(void)
{
	char url[2048], err[256];
	struct replay_mysql_cfg c;

	memset(url, 'a', sizeof url);
	memcpy(url, "mysql://", 8);
	url[8 + 300] = '/';
	url[8 + 301] = 'd';
	url[8 + 302] = 0;     /* a 300-byte host does not fit */
	memset(&c, 0, sizeof c);
	CHECK_EQ_INT(replay_mysql_parse_url(url, &c, err, sizeof err), CL_EUSAGE);
}

static void t_connect_failure_message(void)
{
	struct replay_mysql_cfg c;
	struct replay_backend *b = (struct replay_backend *)1;
	char err[512];

	memset(&c, 0, sizeof c);
	snprintf(c.user, sizeof c.user, "nobody");
	snprintf(c.db, sizeof c.db, "nodb");
	snprintf(c.socket, sizeof c.socket, "%s/absent.sock", harness_tmpdir());
	CHECK_EQ_INT(replay_mysql_open(&b, &c, err, sizeof err), CL_EIO);
	CHECK(b == NULL);
	CHECK(strstr(err, "cannot connect to MySQL at ") && strstr(err, "absent.sock"));
	CHECK(!replay_mysql_bulk(NULL));
}

int main(void)
{
	RUN(t_full_url);
	RUN(t_socket_and_optional_parts);
	RUN(t_bad_urls);
	RUN(t_long_parts_refused);
	RUN(t_connect_failure_message);
	return harness_done();
}
