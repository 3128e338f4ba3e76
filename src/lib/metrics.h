/*
 * metrics: the process's counters, gauges and histograms, written out in the
 * Prometheus text exposition format 0.0.4 for /metrics and read back by the
 * dashboard's status page.
 *
 * A metric has a name ("postern_smtp_connections_total"), one line of help,
 * and either no label or one label with a fixed set of values given when it
 * is registered ("result" = "accepted|refused"): every series exists from
 * the start (a zero is a fact too) and no client input can create a new one,
 * so the number of series is bounded by the code.
 *
 * Registration happens at start-up on the loop thread (or from any thread:
 * it takes a mutex) and is idempotent by name, so a module can register in
 * its constructor and keep the pointer. Updates are lock-free (C11 atomics,
 * relaxed order) and may come from worker threads. A label value that is
 * not in the metric's set is a bug in the caller: it is logged once and the
 * update dropped, never a crash of the mail server.
 *
 * Histograms have fixed upper bounds (seconds, ascending; +Inf is implied)
 * and keep their sum in microseconds, so observations need no floating-point
 * atomics.
 */
#ifndef POSTERN_METRICS_H
#define POSTERN_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric;

/* Registers (or finds, by name) a metric. label is the label's name, or NULL
 * for a metric with one series; values lists the label's values separated
 * by '|' ("accepted|refused"), NULL when label is NULL. Returns a pointer
 * valid for the life of the process. A second registration under the same
 * name with another type or label set is a bug and aborts. */
struct metric *metric_counter(const char *name, const char *help, const char *label, const char *values);
struct metric *metric_gauge(const char *name, const char *help, const char *label, const char *values);
/* bounds: nbounds ascending upper bounds in seconds. */
struct metric *metric_histogram(const char *name, const char *help, const char *label, const char *values,
				const double *bounds, size_t nbounds);

/* value: the label value, or NULL for a metric without a label. */
void metric_add(struct metric *m, const char *value, uint64_t n);
void metric_inc(struct metric *m, const char *value);
void metric_gauge_set(struct metric *m, const char *value, int64_t v);
void metric_gauge_add(struct metric *m, const char *value, int64_t delta);
void metric_observe(struct metric *m, const char *value, double seconds);

/* The current value of one series: a counter's count, a gauge's value, a
 * histogram's number of observations. 0 for an unknown name or value. */
double metrics_value(const char *name, const char *value);
/* Visits a metric's series: (label value or NULL, current value). Returns
 * the number of series, 0 for an unknown name. */
size_t metrics_each(const char *name, void (*fn)(void *arg, const char *value, double v), void *arg);

/* Functions run just before the metrics are written, on the caller's thread
 * (the event loop), to set gauges that are cheaper read than tracked (queue
 * size, sessions, uptime). They run under the registry's lock: they may
 * update metrics (metric_gauge_set, ...) but not register or read any. */
void metrics_on_collect(void (*fn)(void *arg), void *arg);
void metrics_remove_collector(void (*fn)(void *arg), void *arg);

/* Writes every metric in registration order, in the Prometheus text format
 * 0.0.4 (Content-Type: text/plain; version=0.0.4). */
void metrics_write(FILE *out);

/* Metrics counted by several modules, registered on first use (and by the
 * web server at start, so every series exists from the first scrape):
 *   postern_queue_recipients_total{outcome=delivered|deferred|bounced}
 *     each recipient result the queue records (bounced: final failure);
 *   postern_greylist_decisions_total{decision=pass|defer|exempt}
 *     each graylisting decision for a recipient (exempt: not applied). */
struct metric *metrics_queue_outcomes(void);
struct metric *metrics_greylist_decisions(void);

/* Label value escaping of the text format (backslash, double quote, line
 * feed); also used for help texts. Writes to out. */
void metrics_write_escaped(FILE *out, const char *s, int quotes);

#endif
