/*
 * unit: a very small test harness. Each TEST() registers itself at start-up;
 * the runner (tests/unit/main.c) lists them (--list), runs one (--run NAME) or
 * runs all and ends with "unit: N passed, N failed". CHECK failures print
 * file:line and the expression, and the test goes on so one run shows all.
 */
#ifndef POSTERN_UNIT_H
#define POSTERN_UNIT_H

#include <stdio.h>
#include <string.h>

typedef void (*unit_fn)(void);
void unit_register(const char *name, unit_fn fn);
extern int unit_failures;

#define TEST(name)                                                      \
	static void test_##name(void);                                  \
	__attribute__((constructor)) static void register_##name(void)  \
	{                                                               \
		unit_register(#name, test_##name);                      \
	}                                                               \
	static void test_##name(void)

#define CHECK(expr)                                                            \
	do {                                                                   \
		if (!(expr)) {                                                 \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, \
				__LINE__, #expr);                              \
			unit_failures++;                                       \
		}                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                         \
	do {                                                                    \
		const char *a_ = (a), *b_ = (b);                                \
		if (!a_ || !b_ || strcmp(a_, b_)) {                             \
			fprintf(stderr, "%s:%d: CHECK_STR failed: %s\n  got:  %s\n  want: %s\n", \
				__FILE__, __LINE__, #a, a_ ? a_ : "(null)",     \
				b_ ? b_ : "(null)");                            \
			unit_failures++;                                        \
		}                                                               \
	} while (0)

#define CHECK_INT(a, b)                                                          \
	do {                                                                     \
		long long a_ = (long long)(a), b_ = (long long)(b);              \
		if (a_ != b_) {                                                  \
			fprintf(stderr, "%s:%d: CHECK_INT failed: %s: got %lld, want %lld\n", \
				__FILE__, __LINE__, #a, a_, b_);                 \
			unit_failures++;                                         \
		}                                                                \
	} while (0)

#endif
