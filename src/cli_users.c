/*
 * cli_users: `postern user ...` and `postern alias ...` (see cli.h).
 *
 * These commands are how an administrator meets postern first, so every
 * error names the problem and the next step. Output is one line per change
 * on stdout ("added a@example.org"), errors and notes on stderr as
 * "postern: ...", and the list commands also speak JSON for scripts.
 *
 * Passwords: read from the terminal with echo off (asked twice), or as the
 * first line of standard input with --password-stdin; never from the command
 * line, where other users could read them in ps(1). They are read with
 * read(2), byte by byte, so no copy is left in a stdio buffer, and wiped as
 * soon as they are hashed. If a signal arrives while echo is off, the
 * terminal is restored before the process dies.
 *
 * Policy lives here, not in the store: a mailbox or alias source must be in
 * one of [server] domains, and an alias target is either an existing local
 * mailbox or an address outside our domains (forwarded through the outbound
 * queue, with our ARC set; docs/architecture.md). Deleting
 * needs no local domain, so entries of a domain that was removed from the
 * configuration can still be cleaned up.
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "deliver/maildir.h"
#include "lib/json.h"
#include "lib/password.h"
#include "lib/util.h"
#include "store/store.h"

/* The longest password accepted, in bytes (what libxcrypt takes). */
#define CLI_PASSWORD_MAX PASSWORD_MAX
/* The longest address (RFC 5321 section 4.5.3.1.3: 256 with the "<>"). */
#define CLI_ADDRESS_MAX 254
/* Targets one `alias add` may name. */
#define CLI_MAX_TARGETS 100

enum {
	OPT_PASSWORD_STDIN = 1,
	OPT_NO_PASSWORD = 2,
	OPT_JSON = 4,
};

struct opts {
	unsigned flags;
	int help;
	char **pos;
	int npos;
};

static void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void cli_err(const char *fmt, ...)
{
	va_list ap;
	fputs("postern: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_user_usage(FILE *out)
{
	fputs("usage: postern user add ADDRESS [--password-stdin | --no-password]\n"
	      "       postern user del ADDRESS\n"
	      "       postern user passwd ADDRESS [--password-stdin | --no-password]\n"
	      "       postern user list [--json]\n"
	      "\n"
	      "Manage mailboxes. The mail of ADDRESS (user@domain) is kept in the Maildir\n"
	      "MAIL_DIR/DOMAIN/USER/, which Dovecot and other IMAP servers read; with a\n"
	      "password, the mailbox can also log in.\n"
	      "\n"
	      "  add ADDRESS       Create the mailbox and its Maildir. Its domain must be one\n"
	      "                    of [server] domains in the configuration. The password is\n"
	      "                    asked twice on the terminal, unless one of these is given:\n"
	      "      --password-stdin  read it from the first line of standard input\n"
	      "      --no-password     the mailbox receives mail but cannot log in\n"
	      "  del ADDRESS       Remove the mailbox. Its mail stays on disk; the command\n"
	      "                    says where, so that you can archive or delete it.\n"
	      "  passwd ADDRESS    Set a new password (asked like for add), or remove it\n"
	      "                    with --no-password.\n"
	      "  list [--json]     Print every mailbox, one per line; with --json, an array\n"
	      "                    of {\"address\": ..., \"password\": true|false}.\n"
	      "\n"
	      "Addresses are stored in lower case. Mail to user+tag@domain reaches\n"
	      "user@domain (see recipient_delimiter).\n"
	      "\n"
	      "Examples:\n"
	      "  postern user add alice@example.org\n"
	      "  printf '%s\\n' \"$PASSWORD\" | postern user add bob@example.org --password-stdin\n"
	      "  postern user add reports@example.org --no-password\n"
	      "  postern user passwd alice@example.org\n"
	      "  postern user list --json\n"
	      "  postern user del bob@example.org\n",
	      out);
}

void cli_alias_usage(FILE *out)
{
	fputs("usage: postern alias add SOURCE TARGET...\n"
	      "       postern alias del SOURCE [TARGET]\n"
	      "       postern alias list [--json]\n"
	      "\n"
	      "Manage aliases: mail to SOURCE is delivered to every TARGET instead.\n"
	      "\n"
	      "  add SOURCE TARGET...  SOURCE is user@domain, or @domain for a catch-all\n"
	      "                        that receives mail to every address of the domain\n"
	      "                        that is neither a mailbox nor an alias. Its domain\n"
	      "                        must be one of [server] domains. Each TARGET is an\n"
	      "                        existing mailbox of ours, or an address elsewhere:\n"
	      "                        mail is then forwarded there (ARC-sealed, see\n"
	      "                        [arc] seal) through the outbound queue.\n"
	      "  del SOURCE [TARGET]   Remove the alias SOURCE -> TARGET, or without TARGET\n"
	      "                        every target of SOURCE.\n"
	      "  list [--json]         Print every alias as \"source -> target\"; with --json,\n"
	      "                        an array of {\"source\": ..., \"target\": ...}.\n"
	      "\n"
	      "An alias wins over a mailbox of the same address: to keep a copy in the\n"
	      "mailbox too, add it as one of the targets. Aliases may point at aliases,\n"
	      "up to 8 levels.\n"
	      "\n"
	      "Examples:\n"
	      "  postern alias add postmaster@example.org alice@example.org\n"
	      "  postern alias add team@example.org alice@example.org bob@example.org\n"
	      "  postern alias add @example.org alice@example.org\n"
	      "  postern alias del team@example.org bob@example.org\n"
	      "  postern alias list\n",
	      out);
}

/* Splits argv[1..] into flags and positional arguments. Returns 0, or 2
 * after printing the problem. o->pos points into argv. */
static int parse_opts(const char *what, int argc, char **argv, unsigned allowed, struct opts *o)
{
	static const struct {
		const char *name;
		unsigned flag;
	} names[] = {
		{ "--password-stdin", OPT_PASSWORD_STDIN },
		{ "--no-password", OPT_NO_PASSWORD },
		{ "--json", OPT_JSON },
	};
	int only_pos = 0;

	memset(o, 0, sizeof *o);
	o->pos = xcalloc((size_t)argc + 1, sizeof *o->pos);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t k;
		if (only_pos || a[0] != '-' || a[1] == '\0') {
			o->pos[o->npos++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->help = 1;
			continue;
		}
		for (k = 0; k < ARRAY_LEN(names); k++)
			if (!strcmp(a, names[k].name) && (allowed & names[k].flag))
				break;
		if (k == ARRAY_LEN(names)) {
			cli_err("%s: unknown option %s; see 'postern %s --help'", what, a,
				!strncmp(what, "user", 4) ? "user" : "alias");
			return 2;
		}
		o->flags |= names[k].flag;
	}
	if ((o->flags & OPT_PASSWORD_STDIN) && (o->flags & OPT_NO_PASSWORD)) {
		cli_err("%s: give either --password-stdin or --no-password, not both", what);
		return 2;
	}
	return 0;
}

static int want_args(const char *what, const struct opts *o, int min, int max, const char *shape)
{
	if (o->npos >= min && o->npos <= max)
		return 0;
	cli_err("%s: %s; usage: postern %s %s", what, o->npos < min ? "missing argument" : "too many arguments",
		what, shape);
	return 2;
}

/*
 * Checks arg as an address (a catch-all "@domain" only if catchall_ok) and
 * writes it lower-cased to out (CLI_ADDRESS_MAX + 1 bytes); *domain points
 * into out. Returns 0, or -1 after printing what is wrong. The store checks
 * the same rules again; this is here for the message.
 */
static int cli_address(const char *arg, int catchall_ok, char *out, const char **domain)
{
	const char *at = strchr(arg, '@'), *why = NULL;
	size_t len = strlen(arg);

	if (len > CLI_ADDRESS_MAX)
		why = "it is longer than 254 bytes";
	else if (!at)
		why = "it has no '@'";
	else if (strchr(at + 1, '@'))
		why = "it has more than one '@'";
	else if (at == arg && !catchall_ok)
		why = "it has nothing before the '@' (a catch-all @domain can only be an alias source)";
	else if (!at[1])
		why = "it has nothing after the '@'";
	else if (arg[0] == '.' || at[1] == '.')
		why = "a part of it starts with '.'";
	for (const char *p = arg; !why && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == 0x7f || c == '/')
			why = "it contains a space, a control character or '/'";
	}
	if (why) {
		/* The argument is the administrator's own; still, print it safely. */
		fputs("postern: '", stderr);
		for (const char *p = arg; *p && p < arg + 300; p++)
			fputc((unsigned char)*p < ' ' || *p == 0x7f ? '?' : *p, stderr);
		fprintf(stderr, "' is not a valid address: %s; write it as user@domain%s\n", why,
			catchall_ok ? " (or @domain for a catch-all)" : "");
		return -1;
	}
	memcpy(out, arg, len + 1);
	str_lower(out);
	*domain = out + (at - arg) + 1;
	return 0;
}

static int check_local(const struct config *cfg, const char *addr, const char *domain)
{
	if (config_is_local_domain(cfg, domain))
		return 0;
	cli_err("%s: domain %s is not in [server] domains; add it there first (%s)", addr, domain, cfg->path);
	return -1;
}

static struct store *open_store(const struct config *cfg)
{
	char err[512];
	struct store *st = store_open(cfg->data_dir, err, sizeof err);
	if (!st)
		cli_err("cannot open the state database: %s", err);
	return st;
}

/* ---- passwords ---- */

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

static void restore_tty_and_die(int sig)
{
	if (tio_saved)
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Reads one line from fd into buf (CLI_PASSWORD_MAX + 1 bytes) without the
 * line end (LF or CRLF). Returns 0, -1 on a read error, -2 if too long. */
static int read_line_fd(int fd, char *buf)
{
	size_t n = 0;
	int too_long = 0;

	for (;;) {
		char c;
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0 || c == '\n')
			break;
		if (n < CLI_PASSWORD_MAX)
			buf[n++] = c;
		else
			too_long = 1;
	}
	while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == '\n'))
		n--;
	buf[n] = '\0';
	return too_long ? -2 : 0;
}

/* Asks on the terminal with echo off. Returns 0 or -1 (printed). */
static int ask_tty(const char *prompt, char *buf)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };
	struct sigaction sa, old[ARRAY_LEN(sigs)];
	struct termios t;
	int rc;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &saved_tio) < 0) {
		cli_err("cannot read the terminal settings: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = restore_tty_and_die;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
		sigaction(sigs[i], &sa, &old[i]);
	tio_saved = 1;
	t = saved_tio;
	t.c_lflag &= ~(tcflag_t)ECHO;
	t.c_lflag |= ECHONL;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
	rc = read_line_fd(STDIN_FILENO, buf);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_tio);
	tio_saved = 0;
	for (size_t i = 0; i < ARRAY_LEN(sigs); i++)
		sigaction(sigs[i], &old[i], NULL);
	if (rc == -1)
		cli_err("cannot read the password: %s", strerror(errno));
	else if (rc == -2)
		cli_err("the password is longer than %d bytes", CLI_PASSWORD_MAX);
	return rc < 0 ? -1 : 0;
}

/*
 * Gets a password the way o says and returns its hash (the caller frees), or
 * NULL after printing why. *none is set if --no-password was given (and
 * NULL returned without an error).
 */
static char *get_password_hash(const struct opts *o, int *none)
{
	char *pw = xmalloc(CLI_PASSWORD_MAX + 1), *again = NULL, *hash = NULL;
	int ok = 0;

	*none = 0;
	if (o->flags & OPT_NO_PASSWORD) {
		*none = 1;
		free(pw);
		return NULL;
	}
	if (o->flags & OPT_PASSWORD_STDIN) {
		int rc = read_line_fd(STDIN_FILENO, pw);
		if (rc == -1)
			cli_err("cannot read the password from standard input: %s", strerror(errno));
		else if (rc == -2)
			cli_err("the password is longer than %d bytes", CLI_PASSWORD_MAX);
		else if (!*pw)
			cli_err("the password on standard input is empty; give one, or use --no-password");
		else
			ok = 1;
	} else if (!isatty(STDIN_FILENO)) {
		cli_err("no terminal to ask for a password; use --password-stdin or --no-password");
	} else {
		again = xmalloc(CLI_PASSWORD_MAX + 1);
		if (ask_tty("Password: ", pw) == 0 && ask_tty("Again: ", again) == 0) {
			if (!*pw)
				cli_err("the password is empty; nothing was changed (use --no-password for none)");
			else if (strcmp(pw, again))
				cli_err("the two passwords differ; nothing was changed");
			else
				ok = 1;
		}
	}
	if (ok) {
		hash = password_hash(pw);
		if (!hash)
			cli_err("cannot hash the password (see the error above)");
	}
	explicit_bzero(pw, CLI_PASSWORD_MAX + 1);
	free(pw);
	if (again) {
		explicit_bzero(again, CLI_PASSWORD_MAX + 1);
		free(again);
	}
	return hash;
}

/* ---- JSON ---- */

struct lister {
	FILE *out;
	int json;
	size_t n;
	const char *target; /* alias_list: only this target, or NULL */
	const char *mailbox; /* for notes */
};

static int list_user(void *arg, const char *address, int has_password)
{
	struct lister *l = arg;
	if (!l->json) {
		fprintf(l->out, "%s\n", address);
	} else {
		fputs(l->n ? ",\n  {\"address\": " : "[\n  {\"address\": ", l->out);
		json_write_string(l->out, address);
		fprintf(l->out, ", \"password\": %s}", has_password ? "true" : "false");
	}
	l->n++;
	return 0;
}

static int list_alias(void *arg, const char *source, const char *target)
{
	struct lister *l = arg;
	if (!l->json) {
		fprintf(l->out, "%s -> %s\n", source, target);
	} else {
		fputs(l->n ? ",\n  {\"source\": " : "[\n  {\"source\": ", l->out);
		json_write_string(l->out, source);
		fputs(", \"target\": ", l->out);
		json_write_string(l->out, target);
		fputc('}', l->out);
	}
	l->n++;
	return 0;
}

static void list_end(struct lister *l)
{
	if (l->json)
		fputs(l->n ? "\n]\n" : "[]\n", l->out);
}

/* After `user del`: tells about aliases that still point at the mailbox. */
static int note_alias(void *arg, const char *source, const char *target)
{
	struct lister *l = arg;
	if (strcmp(target, l->mailbox))
		return 0;
	cli_err("note: the alias %s -> %s remains and now leads nowhere; remove it with "
		"'postern alias del %s %s'",
		source, target, source, target);
	return 0;
}

/* ---- user ---- */

static int user_add(const struct config *cfg, const struct opts *o)
{
	char addr[CLI_ADDRESS_MAX + 1];
	const char *domain;
	struct store *st;
	char *hash = NULL, *path = NULL;
	int rc, none, status = 1;

	if (cli_address(o->pos[0], 0, addr, &domain) < 0 || check_local(cfg, addr, domain) < 0)
		return 1;
	path = maildir_path(cfg->mail_dir, addr);
	if (!path) {
		cli_err("%s cannot name a Maildir safely; choose another address", addr);
		return 1;
	}
	st = open_store(cfg);
	if (!st)
		goto out;
	rc = store_user_exists(st, addr);
	if (rc == STORE_OK) {
		cli_err("%s already exists; to change its password: postern user passwd %s", addr, addr);
		goto out;
	} else if (rc != STORE_NOTFOUND) {
		cli_err("cannot look up %s (see the error above)", addr);
		goto out;
	}
	hash = get_password_hash(o, &none);
	if (!hash && !none)
		goto out;
	if (maildir_ensure(path) < 0) {
		cli_err("cannot create the Maildir %s: %s; check that the postern user may write to %s", path,
			strerror(errno), cfg->mail_dir);
		goto out;
	}
	rc = store_user_add(st, addr, hash);
	if (rc == STORE_EXISTS) {
		cli_err("%s already exists; to change its password: postern user passwd %s", addr, addr);
	} else if (rc != STORE_OK) {
		cli_err("cannot add %s (see the error above)", addr);
	} else {
		printf("added %s\n", addr);
		status = 0;
	}
out:
	free(hash);
	free(path);
	store_close(st);
	return status;
}

static int user_del(const struct config *cfg, const struct opts *o)
{
	char addr[CLI_ADDRESS_MAX + 1];
	const char *domain;
	struct store *st;
	struct lister l = { 0 };
	char *path;
	int rc;

	if (cli_address(o->pos[0], 0, addr, &domain) < 0)
		return 1;
	st = open_store(cfg);
	if (!st)
		return 1;
	rc = store_user_del(st, addr);
	if (rc == STORE_NOTFOUND) {
		cli_err("there is no mailbox %s; 'postern user list' shows them", addr);
	} else if (rc != STORE_OK) {
		cli_err("cannot delete %s (see the error above)", addr);
	} else {
		path = maildir_path(cfg->mail_dir, addr);
		printf("deleted %s; its mail stays in %s\n", addr, path ? path : cfg->mail_dir);
		free(path);
		l.mailbox = addr;
		store_alias_list(st, note_alias, &l);
	}
	store_close(st);
	return rc == STORE_OK ? 0 : 1;
}

static int user_passwd(const struct config *cfg, const struct opts *o)
{
	char addr[CLI_ADDRESS_MAX + 1];
	const char *domain;
	struct store *st;
	char *hash = NULL;
	int rc, none, status = 1;

	if (cli_address(o->pos[0], 0, addr, &domain) < 0)
		return 1;
	st = open_store(cfg);
	if (!st)
		return 1;
	rc = store_user_exists(st, addr);
	if (rc == STORE_NOTFOUND) {
		cli_err("there is no mailbox %s; create it with 'postern user add %s'", addr, addr);
		goto out;
	} else if (rc != STORE_OK) {
		cli_err("cannot look up %s (see the error above)", addr);
		goto out;
	}
	hash = get_password_hash(o, &none);
	if (!hash && !none)
		goto out;
	rc = store_user_set_password(st, addr, hash);
	if (rc == STORE_NOTFOUND) {
		cli_err("there is no mailbox %s (it was deleted meanwhile)", addr);
	} else if (rc != STORE_OK) {
		cli_err("cannot change the password of %s (see the error above)", addr);
	} else {
		if (none)
			printf("removed the password of %s; it receives mail but cannot log in\n", addr);
		else
			printf("changed the password of %s\n", addr);
		status = 0;
	}
out:
	free(hash);
	store_close(st);
	return status;
}

static int user_list(const struct config *cfg, const struct opts *o)
{
	struct lister l = { .out = stdout, .json = !!(o->flags & OPT_JSON) };
	struct store *st = open_store(cfg);
	int rc;

	if (!st)
		return 1;
	rc = store_user_list(st, list_user, &l);
	store_close(st);
	if (rc != STORE_OK) {
		cli_err("cannot list the mailboxes (see the error above)");
		return 1;
	}
	list_end(&l);
	return 0;
}

int cli_user(const struct config *cfg, int argc, char **argv)
{
	static const struct {
		const char *verb;
		unsigned allowed;
		int min, max;
		const char *shape;
		int (*fn)(const struct config *, const struct opts *);
	} verbs[] = {
		{ "add", OPT_PASSWORD_STDIN | OPT_NO_PASSWORD, 1, 1, "ADDRESS [--password-stdin | --no-password]",
		  user_add },
		{ "del", 0, 1, 1, "ADDRESS", user_del },
		{ "passwd", OPT_PASSWORD_STDIN | OPT_NO_PASSWORD, 1, 1,
		  "ADDRESS [--password-stdin | --no-password]", user_passwd },
		{ "list", OPT_JSON, 0, 0, "[--json]", user_list },
	};
	struct opts o;
	char what[32];
	int rc;

	if (argc < 1) {
		cli_user_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
		cli_user_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++) {
		if (strcmp(argv[0], verbs[i].verb))
			continue;
		snprintf(what, sizeof what, "user %s", verbs[i].verb);
		rc = parse_opts(what, argc, argv, verbs[i].allowed, &o);
		if (rc == 0 && o.help) {
			cli_user_usage(stdout);
		} else if (rc == 0) {
			rc = want_args(what, &o, verbs[i].min, verbs[i].max, verbs[i].shape);
			if (rc == 0)
				rc = verbs[i].fn(cfg, &o);
		}
		free(o.pos);
		return rc;
	}
	cli_err("user: unknown command '%s'; the commands are add, del, passwd and list", argv[0]);
	cli_user_usage(stderr);
	return 2;
}

/* ---- alias ---- */

static int alias_add(const struct config *cfg, const struct opts *o)
{
	char src[CLI_ADDRESS_MAX + 1], (*targets)[CLI_ADDRESS_MAX + 1];
	const char *domain;
	struct store *st = NULL;
	int ntargets = o->npos - 1, status = 1, keeps_copy = 0, rc;

	if (ntargets > CLI_MAX_TARGETS) {
		cli_err("alias add: at most %d targets at once; add the rest with another command", CLI_MAX_TARGETS);
		return 2;
	}
	if (cli_address(o->pos[0], 1, src, &domain) < 0 || check_local(cfg, src, domain) < 0)
		return 1;
	targets = xcalloc((size_t)ntargets, sizeof *targets);
	for (int i = 0; i < ntargets; i++) {
		const char *arg = o->pos[i + 1];
		if (arg[0] == '@' && !strchr(arg + 1, '@')) {
			cli_err("%s: a catch-all cannot be a target; name a mailbox", arg);
			goto out;
		}
		if (cli_address(arg, 0, targets[i], &domain) < 0)
			goto out;
		keeps_copy |= !strcmp(targets[i], src);
	}
	st = open_store(cfg);
	if (!st)
		goto out;
	for (int i = 0; i < ntargets; i++) {
		if (!config_is_local_domain(cfg, strchr(targets[i], '@') + 1))
			continue; /* forwarded outside: nothing of ours to check */
		rc = store_user_exists(st, targets[i]);
		if (rc == STORE_NOTFOUND) {
			cli_err("there is no mailbox %s; create it first with 'postern user add %s'", targets[i],
				targets[i]);
			goto out;
		} else if (rc != STORE_OK) {
			cli_err("cannot look up %s (see the error above)", targets[i]);
			goto out;
		}
	}
	status = 0;
	for (int i = 0; i < ntargets; i++) {
		rc = store_alias_add(st, src, targets[i]);
		if (rc == STORE_OK) {
			printf("added %s -> %s%s\n", src, targets[i],
			       config_is_local_domain(cfg, strchr(targets[i], '@') + 1) ? "" : " (forwarded outside)");
		} else if (rc == STORE_EXISTS) {
			printf("unchanged: %s -> %s already exists\n", src, targets[i]);
		} else {
			cli_err("cannot add %s -> %s (see the error above)", src, targets[i]);
			status = 1;
			break;
		}
	}
	if (status == 0 && !keeps_copy && src[0] != '@' && store_user_exists(st, src) == STORE_OK)
		cli_err("note: %s is also a mailbox; its mail now goes to the alias targets only. "
			"To keep a copy there too: postern alias add %s %s",
			src, src, src);
out:
	free(targets);
	store_close(st);
	return status;
}

static int alias_del(const struct config *cfg, const struct opts *o)
{
	char src[CLI_ADDRESS_MAX + 1], target[CLI_ADDRESS_MAX + 1];
	const char *domain;
	struct store *st;
	int rc, has_target = o->npos == 2;

	if (cli_address(o->pos[0], 1, src, &domain) < 0 || (has_target && cli_address(o->pos[1], 0, target, &domain) < 0))
		return 1;
	st = open_store(cfg);
	if (!st)
		return 1;
	rc = store_alias_del(st, src, has_target ? target : NULL);
	store_close(st);
	if (rc == STORE_NOTFOUND) {
		if (has_target)
			cli_err("there is no alias %s -> %s; 'postern alias list' shows them", src, target);
		else
			cli_err("there is no alias %s; 'postern alias list' shows them", src);
		return 1;
	} else if (rc != STORE_OK) {
		cli_err("cannot delete the alias %s (see the error above)", src);
		return 1;
	}
	if (has_target)
		printf("deleted %s -> %s\n", src, target);
	else
		printf("deleted every alias of %s\n", src);
	return 0;
}

static int alias_list(const struct config *cfg, const struct opts *o)
{
	struct lister l = { .out = stdout, .json = !!(o->flags & OPT_JSON) };
	struct store *st = open_store(cfg);
	int rc;

	if (!st)
		return 1;
	rc = store_alias_list(st, list_alias, &l);
	store_close(st);
	if (rc != STORE_OK) {
		cli_err("cannot list the aliases (see the error above)");
		return 1;
	}
	list_end(&l);
	return 0;
}

int cli_alias(const struct config *cfg, int argc, char **argv)
{
	static const struct {
		const char *verb;
		unsigned allowed;
		int min, max;
		const char *shape;
		int (*fn)(const struct config *, const struct opts *);
	} verbs[] = {
		{ "add", 0, 2, 1 << 20, "SOURCE TARGET...", alias_add },
		{ "del", 0, 1, 2, "SOURCE [TARGET]", alias_del },
		{ "list", OPT_JSON, 0, 0, "[--json]", alias_list },
	};
	struct opts o;
	char what[32];
	int rc;

	if (argc < 1) {
		cli_alias_usage(stderr);
		return 2;
	}
	if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
		cli_alias_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_LEN(verbs); i++) {
		if (strcmp(argv[0], verbs[i].verb))
			continue;
		snprintf(what, sizeof what, "alias %s", verbs[i].verb);
		rc = parse_opts(what, argc, argv, verbs[i].allowed, &o);
		if (rc == 0 && o.help) {
			cli_alias_usage(stdout);
		} else if (rc == 0) {
			rc = want_args(what, &o, verbs[i].min, verbs[i].max, verbs[i].shape);
			if (rc == 0)
				rc = verbs[i].fn(cfg, &o);
		}
		free(o.pos);
		return rc;
	}
	cli_err("alias: unknown command '%s'; the commands are add, del and list", argv[0]);
	cli_alias_usage(stderr);
	return 2;
}
