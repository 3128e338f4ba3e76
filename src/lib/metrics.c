/*
 * metrics: see metrics.h.
 *
 * The registry is a list of metrics under one mutex, which only registration,
 * collectors and writing take. Each metric owns an array of series (one per
 * label value), allocated once and never moved, so an update is a label
 * lookup (a few strcmp over a fixed, small set) and one atomic add.
 */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

#define METRIC_MAX_VALUES 32
#define METRIC_MAX_BOUNDS 24
#define METRIC_MAX_COLLECTORS 16

struct series {
	char *value; /* label value, NULL for a metric without a label */
	_Atomic uint64_t count; /* counter value; histogram observations */
	_Atomic int64_t gauge;
	_Atomic uint64_t sum_us; /* histogram: sum of observations, microseconds */
	_Atomic uint64_t buckets[METRIC_MAX_BOUNDS]; /* not cumulative; +Inf is count */
};

struct metric {
	char *name, *help, *label;
	enum metric_type type;
	struct series *series;
	size_t nseries;
	double bounds[METRIC_MAX_BOUNDS];
	size_t nbounds;
	atomic_int warned;
	struct metric *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct metric *first, **last = &first;
static struct {
	void (*fn)(void *);
	void *arg;
} collectors[METRIC_MAX_COLLECTORS];
static size_t ncollectors;

static int same_values(const struct metric *m, const char *values)
{
	char *copy = values ? xstrdup(values) : NULL, *save = NULL;
	size_t i = 0;
	int same = 1;
	if (!copy)
		return m->nseries == 1 && !m->series[0].value;
	for (char *t = strtok_r(copy, "|", &save); t; t = strtok_r(NULL, "|", &save), i++)
		if (i >= m->nseries || !m->series[i].value || strcmp(m->series[i].value, t))
			same = 0;
	free(copy);
	return same && i == m->nseries;
}

static struct metric *find_locked(const char *name)
{
	for (struct metric *m = first; m; m = m->next)
		if (!strcmp(m->name, name))
			return m;
	return NULL;
}

static struct metric *reg(enum metric_type type, const char *name, const char *help, const char *label,
			  const char *values, const double *bounds, size_t nbounds)
{
	struct metric *m;

	if (!label != !values || nbounds > METRIC_MAX_BOUNDS)
		abort(); /* a bug: a label needs values, values need a label */
	pthread_mutex_lock(&lock);
	m = find_locked(name);
	if (m) {
		if (m->type != type || (label ? !m->label || strcmp(m->label, label) : m->label != NULL) ||
		    !same_values(m, values))
			abort(); /* a bug: one name, two definitions */
		pthread_mutex_unlock(&lock);
		return m;
	}
	m = xcalloc(1, sizeof *m);
	m->name = xstrdup(name);
	m->help = xstrdup(help);
	m->label = label ? xstrdup(label) : NULL;
	m->type = type;
	if (values) {
		char *copy = xstrdup(values), *save = NULL;
		m->series = xcalloc(METRIC_MAX_VALUES, sizeof *m->series);
		for (char *t = strtok_r(copy, "|", &save); t; t = strtok_r(NULL, "|", &save)) {
			if (m->nseries == METRIC_MAX_VALUES)
				abort();
			m->series[m->nseries++].value = xstrdup(t);
		}
		free(copy);
		if (m->nseries == 0)
			abort();
	} else {
		m->series = xcalloc(1, sizeof *m->series);
		m->nseries = 1;
	}
	for (size_t i = 0; i < nbounds; i++) {
		if (i && bounds[i] <= bounds[i - 1])
			abort(); /* bounds must ascend */
		m->bounds[i] = bounds[i];
	}
	m->nbounds = nbounds;
	*last = m;
	last = &m->next;
	pthread_mutex_unlock(&lock);
	return m;
}

struct metric *metric_counter(const char *name, const char *help, const char *label, const char *values)
{
	return reg(METRIC_COUNTER, name, help, label, values, NULL, 0);
}

struct metric *metric_gauge(const char *name, const char *help, const char *label, const char *values)
{
	return reg(METRIC_GAUGE, name, help, label, values, NULL, 0);
}

struct metric *metric_histogram(const char *name, const char *help, const char *label, const char *values,
				const double *bounds, size_t nbounds)
{
	return reg(METRIC_HISTOGRAM, name, help, label, values, bounds, nbounds);
}

/* The series for value, or NULL (logged once per metric). */
static struct series *series_of(struct metric *m, const char *value)
{
	if (!m)
		return NULL;
	if (!m->label) {
		if (!value)
			return &m->series[0];
	} else if (value) {
		for (size_t i = 0; i < m->nseries; i++)
			if (!strcmp(m->series[i].value, value))
				return &m->series[i];
	}
	if (atomic_exchange(&m->warned, 1) == 0) {
		char v[128];
		log_error(NULL, "event=metric_bug metric=%s value=%s", m->name,
			  value ? log_value(v, sizeof v, value, strlen(value)) : "(none)");
	}
	return NULL;
}

void metric_add(struct metric *m, const char *value, uint64_t n)
{
	struct series *s = series_of(m, value);
	if (s)
		atomic_fetch_add_explicit(&s->count, n, memory_order_relaxed);
}

void metric_inc(struct metric *m, const char *value)
{
	metric_add(m, value, 1);
}

void metric_gauge_set(struct metric *m, const char *value, int64_t v)
{
	struct series *s = series_of(m, value);
	if (s)
		atomic_store_explicit(&s->gauge, v, memory_order_relaxed);
}

void metric_gauge_add(struct metric *m, const char *value, int64_t delta)
{
	struct series *s = series_of(m, value);
	if (s)
		atomic_fetch_add_explicit(&s->gauge, delta, memory_order_relaxed);
}

void metric_observe(struct metric *m, const char *value, double seconds)
{
	struct series *s = series_of(m, value);
	if (!s)
		return;
	if (!(seconds >= 0)) /* negative or NaN: a clock step; count as 0 */
		seconds = 0;
	if (seconds > 1e9)
		seconds = 1e9;
	for (size_t i = 0; i < m->nbounds; i++) {
		if (seconds <= m->bounds[i]) {
			atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
			break;
		}
	}
	atomic_fetch_add_explicit(&s->sum_us, (uint64_t)llround(seconds * 1e6), memory_order_relaxed);
	atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

static double series_value(const struct metric *m, struct series *s)
{
	if (m->type == METRIC_GAUGE)
		return (double)atomic_load_explicit(&s->gauge, memory_order_relaxed);
	return (double)atomic_load_explicit(&s->count, memory_order_relaxed);
}

double metrics_value(const char *name, const char *value)
{
	double v = 0;
	struct metric *m;
	pthread_mutex_lock(&lock);
	m = find_locked(name);
	for (size_t i = 0; m && i < m->nseries; i++)
		if (value ? m->series[i].value && !strcmp(m->series[i].value, value) : !m->series[i].value)
			v = series_value(m, &m->series[i]);
	pthread_mutex_unlock(&lock);
	return v;
}

size_t metrics_each(const char *name, void (*fn)(void *arg, const char *value, double v), void *arg)
{
	struct metric *m;
	pthread_mutex_lock(&lock);
	m = find_locked(name);
	pthread_mutex_unlock(&lock);
	if (!m)
		return 0;
	/* The series array never changes after registration. */
	for (size_t i = 0; i < m->nseries; i++)
		fn(arg, m->series[i].value, series_value(m, &m->series[i]));
	return m->nseries;
}

void metrics_on_collect(void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&lock);
	if (ncollectors == METRIC_MAX_COLLECTORS)
		abort(); /* a bug: more collectors than modules */
	collectors[ncollectors].fn = fn;
	collectors[ncollectors].arg = arg;
	ncollectors++;
	pthread_mutex_unlock(&lock);
}

void metrics_remove_collector(void (*fn)(void *arg), void *arg)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < ncollectors; i++) {
		if (collectors[i].fn == fn && collectors[i].arg == arg) {
			memmove(&collectors[i], &collectors[i + 1], (ncollectors - i - 1) * sizeof collectors[0]);
			ncollectors--;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

void metrics_write_escaped(FILE *out, const char *s, int quotes)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (*s == '"' && quotes)
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

static void write_number(FILE *out, double v)
{
	if (v == (double)(int64_t)v && fabs(v) < 9e15)
		fprintf(out, "%lld", (long long)v);
	else
		fprintf(out, "%.17g", v);
}

/* name{label="value",extra} */
static void write_labels(FILE *out, const struct metric *m, const struct series *s, const char *extra)
{
	if (!m->label && !extra)
		return;
	fputc('{', out);
	if (m->label) {
		fprintf(out, "%s=\"", m->label);
		metrics_write_escaped(out, s->value, 1);
		fputc('"', out);
	}
	if (extra)
		fprintf(out, "%s%s", m->label ? "," : "", extra);
	fputc('}', out);
}

void metrics_write(FILE *out)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	size_t n;

	pthread_mutex_lock(&lock);
	n = ncollectors;
	for (size_t i = 0; i < n; i++)
		collectors[i].fn(collectors[i].arg);
	for (struct metric *m = first; m; m = m->next) {
		fprintf(out, "# HELP %s ", m->name);
		metrics_write_escaped(out, m->help, 0);
		fprintf(out, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
		for (size_t i = 0; i < m->nseries; i++) {
			struct series *s = &m->series[i];
			if (m->type != METRIC_HISTOGRAM) {
				fputs(m->name, out);
				write_labels(out, m, s, NULL);
				fputc(' ', out);
				write_number(out, series_value(m, s));
				fputc('\n', out);
				continue;
			}
			{
				uint64_t cum = 0, count = atomic_load_explicit(&s->count, memory_order_relaxed);
				char le[64];
				for (size_t b = 0; b < m->nbounds; b++) {
					cum += atomic_load_explicit(&s->buckets[b], memory_order_relaxed);
					snprintf(le, sizeof le, "le=\"%g\"", m->bounds[b]);
					fprintf(out, "%s_bucket", m->name);
					write_labels(out, m, s, le);
					fprintf(out, " %llu\n", (unsigned long long)cum);
				}
				/* Observations racing with this write may make count
				 * smaller than the buckets' sum; +Inf must not be. */
				if (count < cum)
					count = cum;
				fprintf(out, "%s_bucket", m->name);
				write_labels(out, m, s, "le=\"+Inf\"");
				fprintf(out, " %llu\n%s_sum", (unsigned long long)count, m->name);
				write_labels(out, m, s, NULL);
				fprintf(out, " %.6f\n%s_count", (double)atomic_load_explicit(&s->sum_us, memory_order_relaxed) / 1e6,
					m->name);
				write_labels(out, m, s, NULL);
				fprintf(out, " %llu\n", (unsigned long long)count);
			}
		}
	}
	pthread_mutex_unlock(&lock);
}

struct metric *metrics_queue_outcomes(void)
{
	static _Atomic(struct metric *) m;
	struct metric *v = atomic_load_explicit(&m, memory_order_acquire);
	if (!v) {
		v = metric_counter("postern_queue_recipients_total",
				   "Recipient results recorded by the outbound queue (bounced: final failure).", "outcome",
				   "delivered|deferred|bounced");
		atomic_store_explicit(&m, v, memory_order_release);
	}
	return v;
}

struct metric *metrics_greylist_decisions(void)
{
	static _Atomic(struct metric *) m;
	struct metric *v = atomic_load_explicit(&m, memory_order_acquire);
	if (!v) {
		v = metric_counter("postern_greylist_decisions_total",
				   "Graylisting decisions per recipient (exempt: graylisting not applied).", "decision",
				   "pass|defer|exempt");
		atomic_store_explicit(&m, v, memory_order_release);
	}
	return v;
}
