/*
 * Tests of lib/util (sizes, durations, numbers, strings) and of log_value,
 * the escaping that keeps client bytes from forging log lines.
 */
#include <stdint.h>
#include <stdlib.h>

#include "lib/log.h"
#include "lib/util.h"
#include "unit.h"

TEST(util_parse_size)
{
	uint64_t v = 7;

	CHECK(parse_size("0", &v) == 0 && v == 0);
	CHECK(parse_size("10", &v) == 0 && v == 10);
	CHECK(parse_size("10b", &v) == 0 && v == 10);
	CHECK(parse_size("10k", &v) == 0 && v == 10240);
	CHECK(parse_size("10K", &v) == 0 && v == 10240);
	CHECK(parse_size("10KiB", &v) == 0 && v == 10240);
	CHECK(parse_size("50M", &v) == 0 && v == 50ULL * 1024 * 1024);
	CHECK(parse_size("50mb", &v) == 0 && v == 50ULL * 1024 * 1024);
	CHECK(parse_size("1G", &v) == 0 && v == 1024ULL * 1024 * 1024);
	CHECK(parse_size("8589934591G", &v) == 0 && v == 8589934591ULL << 30);

	v = 7;
	CHECK(parse_size("", &v) < 0);
	CHECK(parse_size("k", &v) < 0);
	CHECK(parse_size("-1", &v) < 0);
	CHECK(parse_size(" 1", &v) < 0);
	CHECK(parse_size("1 k", &v) < 0);
	CHECK(parse_size("1T", &v) < 0);
	CHECK(parse_size("1.5M", &v) < 0);
	CHECK(parse_size("17179869184G", &v) < 0); /* 2^64 */
	CHECK(parse_size("99999999999999999999", &v) < 0);
	CHECK(parse_size("18446744073709551615", &v) < 0);
	CHECK_INT(v, 7); /* untouched on error */
}

TEST(util_parse_duration_ms)
{
	uint64_t v = 7;

	CHECK(parse_duration_ms("30", &v) == 0 && v == 30000);
	CHECK(parse_duration_ms("30s", &v) == 0 && v == 30000);
	CHECK(parse_duration_ms("5m", &v) == 0 && v == 300000);
	CHECK(parse_duration_ms("2h", &v) == 0 && v == 7200000);
	CHECK(parse_duration_ms("1d", &v) == 0 && v == 86400000);
	CHECK(parse_duration_ms("250ms", &v) == 0 && v == 250);
	CHECK(parse_duration_ms("0ms", &v) == 0 && v == 0);

	v = 7;
	CHECK(parse_duration_ms("", &v) < 0);
	CHECK(parse_duration_ms("s", &v) < 0);
	CHECK(parse_duration_ms("5M", &v) < 0); /* minutes or months? neither */
	CHECK(parse_duration_ms("5x", &v) < 0);
	CHECK(parse_duration_ms("1.5s", &v) < 0);
	CHECK(parse_duration_ms("-5s", &v) < 0);
	CHECK(parse_duration_ms("5 s", &v) < 0);
	CHECK(parse_duration_ms("999999999999999999d", &v) < 0);
	CHECK_INT(v, 7);
}

TEST(util_parse_uint)
{
	uint64_t v = 7;

	CHECK(parse_uint("0", 10, &v) == 0 && v == 0);
	CHECK(parse_uint("65535", 65535, &v) == 0 && v == 65535);
	CHECK(parse_uint("007", 65535, &v) == 0 && v == 7);
	CHECK(parse_uint("7", 5, &v) < 0);
	CHECK(parse_uint("18446744073709551615", UINT64_MAX, &v) == 0 && v == UINT64_MAX);

	v = 7;
	CHECK(parse_uint("65536", 65535, &v) < 0);
	CHECK(parse_uint("100000", 65535, &v) < 0);
	CHECK(parse_uint("18446744073709551616", UINT64_MAX, &v) < 0);
	CHECK(parse_uint("99999999999999999999", UINT64_MAX, &v) < 0);
	CHECK(parse_uint("184467440737095516150", UINT64_MAX, &v) < 0);
	CHECK(parse_uint("11", 10, &v) < 0);
	CHECK(parse_uint("", 10, &v) < 0);
	CHECK(parse_uint("+1", 10, &v) < 0);
	CHECK(parse_uint("-1", 10, &v) < 0);
	CHECK(parse_uint("1a", 10, &v) < 0);
	CHECK(parse_uint(" 1", 10, &v) < 0);
	CHECK_INT(v, 7);
}

TEST(util_parse_bool)
{
	int b = 5;
	CHECK(parse_bool("yes", &b) == 0 && b == 1);
	CHECK(parse_bool("TRUE", &b) == 0 && b == 1);
	CHECK(parse_bool("1", &b) == 0 && b == 1);
	CHECK(parse_bool("off", &b) == 0 && b == 0);
	CHECK(parse_bool("No", &b) == 0 && b == 0);
	CHECK(parse_bool("maybe", &b) < 0);
	CHECK(parse_bool("", &b) < 0);
}

TEST(util_strings)
{
	char s1[] = "  a b \t\r\n", s2[] = "", s3[] = " \t ", s4[] = "x", s5[] = "MiXeD@Example.ORG";
	char buf[4];

	CHECK_STR(str_trim(s1), "a b");
	CHECK_STR(str_trim(s2), "");
	CHECK_STR(str_trim(s3), "");
	CHECK_STR(str_trim(s4), "x");
	CHECK_STR(str_lower(s5), "mixed@example.org");

	CHECK_INT(str_copy(buf, "abcdef", sizeof buf), 6);
	CHECK_STR(buf, "abc");
	CHECK_INT(str_copy(buf, "ab", sizeof buf), 2);
	CHECK_STR(buf, "ab");
	CHECK_INT(str_copy(buf, "zz", 0), 2);
	CHECK_STR(buf, "ab"); /* dstsize 0 writes nothing */

	CHECK(str_casecmp_n("HELO x", "helo", 4) == 0);
	CHECK(str_casecmp_n("EHLO", "helo", 4) != 0);
	CHECK(str_casecmp_n("ab", "ab", 10) == 0);
	CHECK(str_casecmp_n("ab", "abc", 10) < 0);
}

TEST(util_misc)
{
	char hex[64], hex2[64];
	char *s = xasprintf("%s-%d", "a", 42);

	CHECK_STR(s, "a-42");
	free(s);
	random_hex(hex, 16);
	random_hex(hex2, 16);
	CHECK_INT(strlen(hex), 16);
	CHECK(strspn(hex, "0123456789abcdef") == 16);
	CHECK(strcmp(hex, hex2) != 0);
	random_hex(hex, 63);
	CHECK_INT(strlen(hex), 63);
	CHECK(now_ms() > 0 && wall_ms() > 1600000000000ULL);
}

static const char *lv(const char *s, size_t n)
{
	static char buf[128];
	return log_value(buf, sizeof buf, s, n);
}

TEST(log_value_escapes)
{
	char small[8], tiny[4];

	CHECK_STR(lv("abc", 3), "abc");
	CHECK_STR(lv("a@b.example", 11), "a@b.example");
	CHECK_STR(lv("", 0), "\"\"");
	CHECK_STR(lv("a b", 3), "\"a b\"");
	CHECK_STR(lv("a=b", 3), "\"a=b\"");
	CHECK_STR(lv("a\"b", 3), "\"a\\\"b\"");
	CHECK_STR(lv("a\\b", 3), "\"a\\\\b\"");
	/* A forged second log line stays on this one. */
	CHECK_STR(lv("x\r\nerror - y", 12), "\"x\\x0d\\x0aerror - y\"");
	CHECK_STR(lv("\x7f", 1), "\"\\x7f\"");
	CHECK_STR(lv("j\xc3\xb6rg", 5), "\"j\\xc3\\xb6rg\"");
	/* n bounds the read, and a NUL inside is escaped, not an end. */
	CHECK_STR(lv("ab\0cd", 5), "\"ab\\x00cd\"");
	CHECK_STR(lv("abcdef", 2), "ab");

	/* Truncation keeps the result terminated and inside the buffer. */
	log_value(small, sizeof small, "abcdefghijkl", 12);
	CHECK(strlen(small) < sizeof small);
	CHECK(!strncmp(small, "a", 1));
	log_value(small, sizeof small, "\n\n\n\n\n\n", 6);
	CHECK(strlen(small) < sizeof small);
	CHECK(small[0] == '"' && small[strlen(small) - 1] == '"');
	memset(tiny, 'x', sizeof tiny);
	log_value(tiny, sizeof tiny, "abc", 3);
	CHECK_STR(tiny, "");
}

TEST(log_level_names)
{
	enum log_level l;
	CHECK(log_level_parse("debug", &l) == 0 && l == LOG_LVL_DEBUG);
	CHECK(log_level_parse("WARN", &l) == 0 && l == LOG_LVL_WARN);
	CHECK(log_level_parse("verbose", &l) < 0);
}
