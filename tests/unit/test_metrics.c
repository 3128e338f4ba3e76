/*
 * Unit tests for src/lib/metrics.c: the Prometheus text format (HELP, TYPE,
 * label escaping, histogram buckets cumulative with +Inf = count), fixed
 * label sets (an unknown value changes nothing), idempotent registration,
 * collectors, and concurrent increments from threads adding up exactly.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/metrics.h"
#include "testlib.h"
#include "unit.h"

static char *written(void)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	metrics_write(f);
	fclose(f);
	return text;
}

TEST(metrics_text_format)
{
	static const double bounds[] = { 0.1, 1 };
	struct metric *c = metric_counter("unit_requests_total", "Requests \\ with \"quotes\"\nand lines.", "code",
					  "ok|bad\"v");
	struct metric *g = metric_gauge("unit_queue", "Queue size.", NULL, NULL);
	struct metric *h = metric_histogram("unit_latency_seconds", "Latency.", NULL, NULL, bounds, 2);
	char *t;

	CHECK(metric_counter("unit_requests_total", "other help", "code", "ok|bad\"v") == c);
	metric_inc(c, "ok");
	metric_add(c, "ok", 4);
	metric_inc(c, "bad\"v");
	testlib_quiet(1);
	metric_inc(c, "unknown"); /* a bug in the caller: logged, dropped */
	metric_inc(c, NULL);
	testlib_quiet(0);
	metric_gauge_set(g, NULL, 7);
	metric_gauge_add(g, NULL, -2);
	metric_observe(h, NULL, 0.05);
	metric_observe(h, NULL, 0.5);
	metric_observe(h, NULL, 3);
	metric_observe(h, NULL, -1); /* a clock step: counted as 0 */

	t = written();
	CHECK(strstr(t, "# HELP unit_requests_total Requests \\\\ with \"quotes\"\\nand lines.\n"
			"# TYPE unit_requests_total counter\n"
			"unit_requests_total{code=\"ok\"} 5\n"
			"unit_requests_total{code=\"bad\\\"v\"} 1\n") != NULL);
	CHECK(strstr(t, "# TYPE unit_queue gauge\nunit_queue 5\n") != NULL);
	CHECK(strstr(t, "# TYPE unit_latency_seconds histogram\n"
			"unit_latency_seconds_bucket{le=\"0.1\"} 2\n"
			"unit_latency_seconds_bucket{le=\"1\"} 3\n"
			"unit_latency_seconds_bucket{le=\"+Inf\"} 4\n"
			"unit_latency_seconds_sum 3.550000\n"
			"unit_latency_seconds_count 4\n") != NULL);
	if (!strstr(t, "unit_latency_seconds_count 4"))
		fprintf(stderr, "%s", t);
	free(t);
	CHECK(metrics_value("unit_requests_total", "ok") == 5);
	CHECK(metrics_value("unit_queue", NULL) == 5);
	CHECK(metrics_value("unit_latency_seconds", NULL) == 4);
	CHECK(metrics_value("unit_nothing", NULL) == 0);
}

static void set_seven(void *arg)
{
	metric_gauge_set(arg, NULL, 7777);
}

TEST(metrics_collector)
{
	struct metric *g = metric_gauge("unit_collected", "Set at collection.", NULL, NULL);
	char *t;
	metrics_on_collect(set_seven, g);
	t = written();
	CHECK(strstr(t, "\nunit_collected 7777\n") != NULL);
	free(t);
	metrics_remove_collector(set_seven, g);
	metric_gauge_set(g, NULL, 1);
	t = written();
	CHECK(strstr(t, "\nunit_collected 1\n") != NULL);
	free(t);
}

static void *hammer(void *arg)
{
	static const double b[] = { 0.5 };
	struct metric *m = arg;
	struct metric *h = metric_histogram("unit_threads_seconds", "h", NULL, NULL, b, 1);
	for (int i = 0; i < 100000; i++) {
		metric_inc(m, i & 1 ? "odd" : "even");
		metric_observe(h, NULL, 0.25);
	}
	return NULL;
}

TEST(metrics_threads_add_up)
{
	static const double b[] = { 0.5 };
	struct metric *m = metric_counter("unit_threads_total", "Threads.", "kind", "odd|even");
	pthread_t th[4];
	metric_histogram("unit_threads_seconds", "h", NULL, NULL, b, 1);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, hammer, m);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK(metrics_value("unit_threads_total", "odd") == 200000);
	CHECK(metrics_value("unit_threads_total", "even") == 200000);
	CHECK(metrics_value("unit_threads_seconds", NULL) == 400000);
}
