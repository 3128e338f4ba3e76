/*
 * Unit tests for src/deliver/mtasts.c: the TXT record and the policy as
 * RFC 8461 writes them (its section 3.1 and 3.2 examples), malformed ones,
 * and MX pattern matching (section 4.1).
 */
#include <string.h>

#include "deliver/mtasts.h"
#include "unit.h"

static int rec(const char *t, char *id)
{
	char why[128];
	return mtasts_record_parse(t, strlen(t), id, MTASTS_ID_MAX + 1, why, sizeof why);
}

TEST(mtasts_record)
{
	char id[MTASTS_ID_MAX + 1];
	CHECK_INT(rec("v=STSv1; id=20160831085700Z;", id), 0); /* RFC 8461 3.1 */
	CHECK_STR(id, "20160831085700Z");
	CHECK_INT(rec("v=STSv1;id=abc", id), 0);
	CHECK_STR(id, "abc");
	CHECK_INT(rec("v=STSv1; id=abc; ext=1", id), 0);
	CHECK_INT(rec("id=abc; v=STSv1", id), -1);   /* v= must be first */
	CHECK_INT(rec("v=STSv2; id=abc", id), -1);
	CHECK_INT(rec("v=STSv1", id), -1);           /* no id */
	CHECK_INT(rec("v=STSv1; id=", id), -1);
	CHECK_INT(rec("v=STSv1; id=has-dash", id), -1);
	CHECK_INT(rec("v=STSv1; id=123456789012345678901234567890123", id), -1); /* 33 */
	CHECK_INT(rec("", id), -1);
	CHECK_INT(rec("v=spf1 -all", id), -1);
}

TEST(mtasts_policy)
{
	const char *t = "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\n"
			"mx: backupmx.example.com\r\nmax_age: 604800\r\n"; /* RFC 8461 3.2 */
	struct mtasts_policy p;
	char why[128];
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), 0);
	CHECK_INT(p.mode, MTASTS_ENFORCE);
	CHECK_INT(p.nmx, 3);
	CHECK_INT(p.max_age, 604800);
	CHECK(mtasts_mx_match(&p, "mail.example.com"));
	CHECK(mtasts_mx_match(&p, "MAIL.Example.COM."));
	CHECK(mtasts_mx_match(&p, "mx1.example.net"));
	CHECK(!mtasts_mx_match(&p, "a.b.example.net")); /* one label only */
	CHECK(!mtasts_mx_match(&p, "example.net"));
	CHECK(!mtasts_mx_match(&p, "mail.example.org"));
	mtasts_policy_clear(&p);

	t = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 99999999999\nfuture: x\n";
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), -1); /* 11 digits */
	t = "version: STSv1\nmode: testing\nmx: mx.example.org\nmax_age: 9999999999\nfuture: x\n";
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), 0);
	CHECK_INT(p.mode, MTASTS_TESTING);
	CHECK_INT(p.max_age, MTASTS_MAX_AGE); /* capped at a year */
	mtasts_policy_clear(&p);

	t = "version: STSv1\nmode: none\nmax_age: 86400\n";
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), 0);
	mtasts_policy_clear(&p);

	t = "version: STSv1\nmode: enforce\nmax_age: 86400\n"; /* no mx */
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), -1);
	t = "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 86400\n";
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), -1);
	t = "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 86400\n";
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), -1);
	t = "version: STSv1\nmode: enforce\nmx: a.example\n"; /* no max_age */
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), -1);
	t = "version: STSv1\nmode: enforce\nmx: bad host\nmax_age: 1\n";
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), -1);
	t = "<html>Not found</html>";
	CHECK_INT(mtasts_policy_parse(t, strlen(t), &p, why, sizeof why), -1);
}
