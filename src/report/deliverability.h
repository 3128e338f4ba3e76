/*
 * deliverability: per provider and per day, what we sent, what became of it
 * and what the provider's DMARC aggregate reports say it saw from us, with
 * the flags of the silent-drop detector.
 *
 * Pure aggregation: the caller (cli_deliverability.c, the dashboard) reads
 * the store's aggregates (store_ledger_daily, store_ledger_reasons,
 * store_ledger_recent, store_dmarc_daily) and hands the rows in; nothing
 * here does I/O. Days are UTC days; the window is the params.days days
 * ending with the day of `now`.
 *
 * Providers are the ledger's (route_provider(): gmail, outlook, yahoo,
 * icloud, other; "local" deliveries are not counted). A DMARC report is
 * attributed to a provider by its reporter: the org_name or the domain of
 * the report's email (google.com -> gmail; Microsoft, outlook.com,
 * hotmail.com -> outlook; Yahoo, yahoo.com, aol.com -> yahoo; Apple,
 * icloud.com -> icloud); other reporters are not counted. "What the
 * provider saw from us" is the sum of the counts of its records whose
 * header_from is one of our domains, put on the UTC day its period begins.
 *
 * Flags (thresholds in struct deliv_params):
 *   silent_drop      reports from the provider exist in the window, and the
 *                    messages they count are fewer than min_ratio of the
 *                    messages it accepted (delivered) on the days up to the
 *                    end of its newest report; only when at least
 *                    min_messages were accepted on those days.
 *   reports_missing  min_messages or more accepted in the window by a
 *                    provider that sends DMARC reports (not "other"), and
 *                    no report from it at all.
 *   reputation       a run of reputation_run or more consecutive attempts
 *                    (among the latest attempts handed in) refused or
 *                    deferred for reputation: enhanced status 5.7.x or
 *                    4.7.x, or a reply containing one of the patterns
 *                    (case-insensitive). Any other attempt ends a run.
 *
 * Bounds: DELIV_MAX_DAYS days, DELIV_MAX_REASONS reasons per provider.
 */
#ifndef POSTERN_REPORT_DELIVERABILITY_H
#define POSTERN_REPORT_DELIVERABILITY_H

#include <stddef.h>
#include <stdint.h>

#define DELIV_MAX_DAYS 366
#define DELIV_MAX_REASONS 10

enum deliv_provider { DELIV_GMAIL, DELIV_OUTLOOK, DELIV_YAHOO, DELIV_ICLOUD, DELIV_OTHER, DELIV_NPROVIDERS };

struct deliv_params {
	int days;               /* the window, 1..DELIV_MAX_DAYS */
	double min_ratio;       /* reported / accepted below this: silent_drop */
	int64_t min_messages;   /* fewer accepted: no silent_drop / reports_missing */
	int64_t reputation_run; /* this many consecutive reputation refusals: reputation */
	const char *const *patterns; /* reply substrings that mean reputation */
	size_t npatterns;
};

/* The defaults: 7 days, 80 %, 20 messages, 5 refusals, and a short list of
 * phrases the big providers use. */
void deliv_params_default(struct deliv_params *p);

struct deliv_day {
	int64_t sent;      /* attempts: delivered + deferred + bounced */
	int64_t delivered, deferred, bounced;
	int64_t reported;  /* messages the provider's reports count from our domains */
	int64_t reported_pass; /* of which DKIM or SPF passed */
	int reports;       /* report periods beginning that day */
};

struct deliv_reason {
	char *outcome, *status, *reply; /* reply: one example */
	int code;
	int64_t count;
	int reputation;
};

struct deliv_stat {
	const char *name;
	struct deliv_day *days; /* ndays, oldest first */
	struct deliv_day total;
	char *routes;           /* routes used, comma-separated ("" if none) */
	struct deliv_reason reasons[DELIV_MAX_REASONS];
	size_t nreasons;
	int64_t compared_accepted; /* delivered on the days up to the newest report's end */
	int64_t last_report_day;   /* day start of the newest report's end, -1: none */
	int64_t longest_run, current_run; /* reputation refusals */
	int64_t run;               /* internal: the run being counted */
	int run_broken;            /* internal: the current run has ended */
	int silent_drop, reports_missing, reputation;
};

struct deliv {
	struct deliv_params p;
	int64_t day0; /* start of the window's first day */
	size_t ndays;
	struct deliv_stat prov[DELIV_NPROVIDERS];
};

/* A new aggregation for the window ending with now's day. p is copied
 * (the patterns are borrowed); days outside 1..DELIV_MAX_DAYS are clamped. */
struct deliv *deliv_new(int64_t now, const struct deliv_params *p);
void deliv_free(struct deliv *d);

const char *deliv_provider_name(enum deliv_provider p);
/* The ledger's provider name -> index, -1 for "local" or unknown. */
int deliv_provider_index(const char *name);
/* The provider a DMARC reporter stands for, -1 if none. */
int deliv_reporter_provider(const char *org_name, const char *email);
/* Whether an attempt's answer means a reputation refusal. */
int deliv_is_reputation(const struct deliv_params *p, const char *status, const char *reply);

/* Feeding (any order unless said). day: Unix time of the day's start;
 * rows outside the window are ignored. */
void deliv_add_ledger(struct deliv *d, const char *provider, int64_t day, const char *outcome, int64_t count,
		      const char *routes);
void deliv_add_reason(struct deliv *d, const char *provider, const char *outcome, const char *status, int code,
		      int64_t count, const char *reply);
/* One attempt to provider; attempts of one provider newest first. */
void deliv_add_attempt(struct deliv *d, const char *provider, const char *outcome, const char *status,
		       const char *reply);
/* One report's records for one header_from; our domains decide whether it
 * counts. */
void deliv_add_report(struct deliv *d, const char *org_name, const char *email, int64_t begin, int64_t end,
		      const char *header_from, int64_t messages, int64_t pass, const char *const *domains,
		      size_t ndomains);
/* Sets the flags; call once, after feeding. Returns how many flags are set. */
int deliv_finish(struct deliv *d);



/* Why a flag is set, in one sentence (written to buf, n bytes). which:
 * "silent_drop", "reports_missing" or "reputation". */
void deliv_flag_text(const struct deliv *d, const struct deliv_stat *s, const char *which, char *buf, size_t n);

/*
 * deliverability_load.c: fills d from the store (the one impure part):
 * the ledger per provider and day, up to DELIV_LOAD_REASONS reasons, the
 * latest DELIV_LOAD_ATTEMPTS attempts per provider (for the runs), and up
 * to DELIV_LOAD_REPORT_ROWS DMARC report rows, then deliv_finish(). Bounded,
 * so that the dashboard can call it on the event loop. Returns 0, or -1 if
 * the store failed (d holds what was read).
 */
#define DELIV_LOAD_REASONS 200
#define DELIV_LOAD_ATTEMPTS 1000
#define DELIV_LOAD_REPORT_ROWS 20000
struct store;
int deliv_load(struct deliv *d, struct store *st, const char *const *domains, size_t ndomains);
#endif
