/*
 * The unit test runner. Usage:
 *   unit-tests            run every test, print a summary line
 *   unit-tests --list     print the test names, one per line
 *   unit-tests --run NAME run one test; exit 1 if it failed
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

struct unit_test {
	const char *name;
	unit_fn fn;
};

static struct unit_test tests[1024];
static size_t ntests;
int unit_failures;

void unit_register(const char *name, unit_fn fn)
{
	if (ntests == sizeof tests / sizeof tests[0])
		abort();
	tests[ntests].name = name;
	tests[ntests].fn = fn;
	ntests++;
}

static int run(const struct unit_test *t)
{
	int before = unit_failures;
	t->fn();
	return unit_failures == before;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < ntests; i++)
			puts(tests[i].name);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "--run")) {
		for (size_t i = 0; i < ntests; i++)
			if (!strcmp(tests[i].name, argv[2]))
				return run(&tests[i]) ? 0 : 1;
		fprintf(stderr, "no test named %s\n", argv[2]);
		return 2;
	}
	for (size_t i = 0; i < ntests; i++) {
		if (run(&tests[i])) {
			passed++;
		} else {
			failed++;
			printf("FAIL %s\n", tests[i].name);
		}
	}
	printf("unit: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
