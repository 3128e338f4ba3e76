/*
 * Tests for src/auth/authres.c: authserv-id extraction, removal of forged
 * fields, and the field we write (RFC 8601).
 */
#include <stdlib.h>
#include <string.h>

#include "auth/authres.h"
#include "unit.h"

TEST(authres_serv_id_forms)
{
	char id[64];
	CHECK_INT(authres_serv_id(" mx.example.test; spf=pass", 26, id, sizeof id), 0);
	CHECK_STR(id, "mx.example.test");
	CHECK_INT(authres_serv_id(" (c (nested)) MX.Example.TEST 1; none", 37, id, sizeof id), 0);
	CHECK_STR(id, "mx.example.test");
	CHECK_INT(authres_serv_id(" \"mx.example.test\"; none", 24, id, sizeof id), 0);
	CHECK_STR(id, "mx.example.test");
	CHECK_INT(authres_serv_id("   ", 3, id, sizeof id), -1);
}

TEST(authres_strip_keeps_others)
{
	const char *hdr = "Subject: x\n"
			  "Authentication-Results: mx.example.test; spf=pass\n"
			  "authentication-results  :\n\tmx.example.test;\n\tdkim=pass\n"
			  "Authentication-Results: other.example; dkim=pass\n"
			  "Authentication-Results-X: mx.example.test; none\n"
			  "\n";
	size_t len;
	int removed;
	char *out = authres_strip(hdr, strlen(hdr), "mx.example.test", &len, &removed);
	CHECK_INT(removed, 2);
	CHECK_STR(out, "Subject: x\n"
		       "Authentication-Results: other.example; dkim=pass\n"
		       "Authentication-Results-X: mx.example.test; none\n"
		       "\n");
	CHECK_INT(len, strlen(out));
	free(out);
}

TEST(authres_field_written)
{
	struct authres *a = authres_new("mx.example.test");
	char *f;
	authres_add(a, "spf", "pass", NULL);
	authres_prop(a, "smtp.mailfrom", "alice@example.org");
	authres_add(a, "dkim", "fail", "bad (really) sig");
	authres_prop(a, "header.d", "example.org");
	authres_prop(a, "header.b", "ab\"c; d");
	f = authres_field(a);
	CHECK_STR(f, "Authentication-Results: mx.example.test; spf=pass\n"
		     "\tsmtp.mailfrom=alice@example.org; dkim=fail (bad \\(really\\) sig)\n"
		     "\theader.d=example.org header.b=\"ab\\\"c; d\"\n");
	free(f);
	authres_free(a);
	a = authres_new("mx.example.test");
	authres_none(a);
	f = authres_field(a);
	CHECK_STR(f, "Authentication-Results: mx.example.test; none\n");
	free(f);
	authres_free(a);
}
