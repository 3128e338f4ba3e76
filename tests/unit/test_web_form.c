/*
 * Unit tests for src/web/form.c: form bodies as browsers send them ('+' and
 * %XX, fields in any order, the first of a repeated name), Cookie headers
 * with spaces and quotes, and the bounds (too long or a NUL: absent).
 */
#include <string.h>

#include "unit.h"
#include "web/form.h"

TEST(form_field_decoding)
{
	static const char body[] = "address=alice%40example.org&password=a+b%2Bc%25%zz%4&empty=&x=1&x=2";
	char out[64];
	CHECK_INT(form_field(body, strlen(body), "address", out, sizeof out), 17);
	CHECK_STR(out, "alice@example.org");
	CHECK(form_field(body, strlen(body), "password", out, sizeof out) > 0);
	CHECK_STR(out, "a b+c%%zz%4");
	CHECK_INT(form_field(body, strlen(body), "empty", out, sizeof out), 0);
	CHECK_STR(out, "");
	CHECK_INT(form_field(body, strlen(body), "x", out, sizeof out), 1);
	CHECK_STR(out, "1");
	CHECK_INT(form_field(body, strlen(body), "missing", out, sizeof out), -1);
	CHECK_INT(form_field(body, strlen(body), "addres", out, sizeof out), -1);
	/* Only the given length counts. */
	CHECK_INT(form_field(body, 5, "address", out, sizeof out), -1);
	CHECK_INT(form_field(NULL, 0, "a", out, sizeof out), -1);
}

TEST(form_field_bounds)
{
	char out[4];
	CHECK_INT(form_field("a=abc", 5, "a", out, sizeof out), 3);
	CHECK_INT(form_field("a=abcd", 6, "a", out, sizeof out), -1);
	CHECK_INT(form_field("a=x%00y", 7, "a", out, sizeof out), -1);
}

TEST(form_cookie_parsing)
{
	char out[80];
	CHECK_INT(form_cookie("a=1; postern_session=abc ;b=2", "postern_session", out, sizeof out), 3);
	CHECK_STR(out, "abc");
	CHECK_INT(form_cookie("x_postern_session=1;postern_session=\"q\"", "postern_session", out, sizeof out), 1);
	CHECK_STR(out, "q");
	CHECK_INT(form_cookie("postern_sessionx=1", "postern_session", out, sizeof out), -1);
	CHECK_INT(form_cookie("", "a", out, sizeof out), -1);
	CHECK_INT(form_cookie("a=0123456789", "a", out, 5), -1);
}
