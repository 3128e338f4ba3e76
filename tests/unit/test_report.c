/*
 * Tests of the report modules (src/report/): unpacking with its bounds,
 * the DMARC XML and TLS-RPT JSON parsers, the MIME walker, report_parse
 * as a whole, the source address matcher, and the store's report tables
 * (de-duplication and the summaries). Hostile inputs are made here, in
 * memory: entity expansion, external entities, deep nesting, bombs.
 */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "config.h"
#include "report/mime.h"
#include "report/report.h"
#include "report/unpack.h"
#include "store/store.h"
#include "testlib.h"
#include "unit.h"

#define MIB (1024 * 1024)

/* gzip of n bytes of c, compressed in chunks (so a bomb needs no big buffer). */
static unsigned char *gzip_fill(size_t n, char c, size_t *outlen)
{
	z_stream z;
	unsigned char in[65536], *out = NULL;
	size_t cap = 0, len = 0;
	memset(&z, 0, sizeof z);
	memset(in, c, sizeof in);
	deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
	for (;;) {
		size_t take = n > sizeof in ? sizeof in : n;
		int flush = take == n ? Z_FINISH : Z_NO_FLUSH;
		n -= take;
		z.next_in = in;
		z.avail_in = (uInt)take;
		do {
			if (cap - len < 65536) {
				cap = cap * 2 + 65536;
				out = realloc(out, cap);
			}
			z.next_out = out + len;
			z.avail_out = (uInt)(cap - len);
			deflate(&z, flush);
			len = cap - z.avail_out;
		} while (z.avail_out == 0);
		if (flush == Z_FINISH)
			break;
	}
	deflateEnd(&z);
	*outlen = len;
	return out;
}

static unsigned char *gzip_text(const char *s, size_t *outlen)
{
	z_stream z;
	size_t cap = strlen(s) + 256;
	unsigned char *out = malloc(cap);
	memset(&z, 0, sizeof z);
	deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
	z.next_in = (unsigned char *)s;
	z.avail_in = (uInt)strlen(s);
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	*outlen = cap - z.avail_out;
	deflateEnd(&z);
	return out;
}

static const char REPORT[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<feedback>\n"
	" <report_metadata><org_name>Reporter</org_name><email>r@example.net</email>\n"
	"  <report_id>id-1</report_id><date_range><begin>1700000000</begin><end>1700086399.0</end></date_range>\n"
	" </report_metadata>\n"
	" <policy_published><domain>Example.COM</domain><adkim>r</adkim><p>reject</p><pct>100</pct></policy_published>\n"
	" <record><row><source_ip>192.0.2.1</source_ip><count>5</count>\n"
	"   <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf>\n"
	"    <reason><type>forwarded</type><comment>list</comment></reason></policy_evaluated></row>\n"
	"  <identifiers><header_from>example.com</header_from><envelope_from>bounce.example.com</envelope_from></identifiers>\n"
	"  <auth_results><dkim><domain>example.com</domain><selector>s1</selector><result>pass</result></dkim>\n"
	"   <spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>fail</result></spf></auth_results>\n"
	" </record>\n"
	" <record><row><source_ip>2001:db8::1</source_ip><count>2</count><policy_evaluated><disposition>reject</disposition>"
	"</policy_evaluated></row>\n"
	"  <identities><header_from>example.com</header_from></identities>\n"
	"  <auth_results><spf><domain>mail.example.com</domain><result>pass</result></spf></auth_results>\n"
	" </record>\n"
	"</feedback>\n";

TEST(report_dmarc_xml_fields)
{
	char why[300] = "";
	struct dmarc_report *r = dmarc_xml_parse(REPORT, strlen(REPORT), 100, why, sizeof why);
	CHECK(r != NULL);
	if (!r) {
		fprintf(stderr, "why: %s\n", why);
		return;
	}
	CHECK_STR(r->r.org_name, "Reporter");
	CHECK_STR(r->r.report_id, "id-1");
	CHECK_STR(r->r.domain, "example.com");
	CHECK_STR(r->r.format, "rfc7489");
	CHECK_STR(r->r.policy, "p=reject pct=100 adkim=r");
	CHECK_INT(r->r.begin, 1700000000);
	CHECK_INT(r->r.end, 1700086399);
	CHECK_INT(r->r.nrecords, 2);
	CHECK_STR(r->r.records[0].source_ip, "192.0.2.1");
	CHECK_INT(r->r.records[0].count, 5);
	CHECK_STR(r->r.records[0].dkim, "pass");
	CHECK_STR(r->r.records[0].spf, "fail");
	CHECK_STR(r->r.records[0].reason, "forwarded: list");
	CHECK_STR(r->r.records[0].envelope_from, "bounce.example.com");
	CHECK_STR(r->r.records[0].auth_results, "dkim=pass d=example.com s=s1; spf=fail d=bounce.example.com scope=mfrom");
	/* <identities> and derived policy_evaluated: SPF passes aligned (a subdomain). */
	CHECK_STR(r->r.records[1].header_from, "example.com");
	CHECK_STR(r->r.records[1].disposition, "reject");
	CHECK_STR(r->r.records[1].spf, "pass");
	CHECK_STR(r->r.records[1].dkim, "fail");
	dmarc_report_free(r);
}

TEST(report_dmarc_xml_namespaces_and_encodings)
{
	char why[300] = "";
	const char *v2 = "<feedback xmlns=\"urn:ietf:params:xml:ns:dmarc-2.0\"><report_metadata><org_name>o</org_name>"
			 "<report_id>x</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata>"
			 "<policy_published><domain>d.example</domain><np>none</np></policy_published></feedback>";
	const char *cp = "<?xml version=\"1.0\" encoding=\"windows-1252\"?><feedback><report_metadata>"
			 "<org_name>Caf\xe9 \x80</org_name><report_id>x</report_id><date_range><begin>1</begin><end>2</end>"
			 "</date_range></report_metadata><policy_published><domain>d.example</domain></policy_published>"
			 "</feedback>";
	struct dmarc_report *r = dmarc_xml_parse(v2, strlen(v2), 10, why, sizeof why);
	CHECK(r && !strcmp(r->r.format, "dmarc-2.0") && r->r.nrecords == 0 && !strcmp(r->r.policy, "np=none"));
	dmarc_report_free(r);
	r = dmarc_xml_parse(cp, strlen(cp), 10, why, sizeof why);
	CHECK(r != NULL);
	if (r)
		CHECK_STR(r->r.org_name, "Caf\xc3\xa9 \xe2\x82\xac");
	dmarc_report_free(r);
}

static void expect_refused(const char *xml, size_t max_records, const char *reason_part)
{
	char why[300] = "";
	struct dmarc_report *r = dmarc_xml_parse(xml, strlen(xml), max_records, why, sizeof why);
	CHECK(r == NULL);
	if (!strstr(why, reason_part))
		fprintf(stderr, "  reason '%s' lacks '%s'\n", why, reason_part);
	CHECK(strstr(why, reason_part) != NULL);
	dmarc_report_free(r);
}

TEST(report_dmarc_xml_hostile)
{
	char *deep = malloc(200 * 7 + 64), *p = deep;
	p += sprintf(p, "<feedback>");
	for (int i = 0; i < 100; i++)
		p += sprintf(p, "<a>");
	sprintf(p, "x");
	expect_refused("<?xml version=\"1.0\"?><!DOCTYPE feedback [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]>"
		       "<feedback><report_metadata><report_id>&b;</report_id></report_metadata></feedback>",
		       10, "DOCTYPE");
	expect_refused("<!DOCTYPE feedback [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><feedback>&xxe;</feedback>", 10,
		       "DOCTYPE");
	expect_refused(deep, 10, "nested deeper than 16");
	free(deep);
	expect_refused("<feedback><report_metadata><org_name>\xff\xfe</org_name></report_metadata></feedback>", 10,
		       "not well-formed");
	expect_refused("<feedback><record><row><source_ip>1.2.3.4</source_ip><count>1</count></row></record>"
		       "<record><row><source_ip>1.2.3.4</source_ip><count>1</count></row></record></feedback>",
		       1, "more than 1 records");
	expect_refused("<feedback><record><row><source_ip>1.2.3.x</source_ip><count>1</count></row></record></feedback>",
		       10, "not an IP address");
	expect_refused("<feedback><report_metadata><report_id>x</report_id></report_metadata>", 10, "not well-formed");
	expect_refused("<html><body/></html>", 10, "root element is <html>");
	expect_refused("<feedback><report_metadata><report_id>x</report_id></report_metadata></feedback>", 10,
		       "no domain");
	{
		char *big = malloc(3000);
		memset(big, 'a', 2999);
		big[2999] = '\0';
		char *doc = malloc(3200);
		snprintf(doc, 3200, "<feedback><report_metadata><report_id>%s</report_id></report_metadata></feedback>", big);
		expect_refused(doc, 10, "longer than 1024 bytes");
		free(doc);
		free(big);
	}
}

static const char TLS[] =
	"{\"organization-name\": \"Company-X\", \"date-range\": {\"start-datetime\": \"2016-04-01T00:00:00Z\","
	" \"end-datetime\": \"2016-04-01T23:59:59+02:00\"}, \"contact-info\": \"sts@company-x.example\","
	" \"report-id\": \"r1\", \"policies\": [{\"policy\": {\"policy-type\": \"sts\", \"policy-string\": "
	"[\"version: STSv1\", \"mode: testing\"], \"policy-domain\": \"Company-Y.example\", \"mx-host\": "
	"[\"*.mail.company-y.example\"]}, \"summary\": {\"total-successful-session-count\": 5326, "
	"\"total-failure-session-count\": 303}, \"failure-details\": [{\"result-type\": \"certificate-expired\", "
	"\"sending-mta-ip\": \"2001:db8:abcd:0012::1\", \"receiving-mx-hostname\": \"mx1.mail.company-y.example\", "
	"\"failed-session-count\": 100}]}]}";

TEST(report_tlsrpt_fields)
{
	char why[300] = "";
	struct tlsrpt_report *r = tlsrpt_parse(TLS, strlen(TLS), 100, why, sizeof why);
	CHECK(r != NULL);
	if (!r) {
		fprintf(stderr, "why: %s\n", why);
		return;
	}
	CHECK_STR(r->r.org_name, "Company-X");
	CHECK_STR(r->r.report_id, "r1");
	CHECK_INT(r->r.begin, 1459468800);
	CHECK_INT(r->r.end, 1459468800 + 86399 - 7200);
	CHECK_INT(r->r.npolicies, 1);
	CHECK_STR(r->r.policies[0].domain, "company-y.example");
	CHECK_STR(r->r.policies[0].policy_string, "version: STSv1; mode: testing");
	CHECK_STR(r->r.policies[0].mx_host, "*.mail.company-y.example");
	CHECK_INT(r->r.policies[0].success, 5326);
	CHECK_INT(r->r.policies[0].failure, 303);
	CHECK_INT(r->r.policies[0].nfailures, 1);
	CHECK_STR(r->r.policies[0].failures[0].result_type, "certificate-expired");
	CHECK_INT(r->r.policies[0].failures[0].count, 100);
	tlsrpt_report_free(r);
	/* 1 policy + 1 failure detail is 2 records: a bound of 1 refuses it. */
	r = tlsrpt_parse(TLS, strlen(TLS), 1, why, sizeof why);
	CHECK(r == NULL && strstr(why, "max_records"));
}

TEST(report_tlsrpt_hostile)
{
	char why[300] = "";
	char deep[200];
	memset(deep, '[', 100);
	deep[100] = '\0';
	CHECK(!tlsrpt_parse(deep, strlen(deep), 10, why, sizeof why) && strstr(why, "nested deeper than 8"));
	CHECK(!tlsrpt_parse("{\"a\": ", 6, 10, why, sizeof why) && strstr(why, "malformed"));
	CHECK(!tlsrpt_parse("{\"a\": \"\xff\"}", 10, 10, why, sizeof why) && strstr(why, "malformed"));
	CHECK(!tlsrpt_parse("{\"a\": 1, \"a\": 2}", 16, 10, why, sizeof why) && strstr(why, "malformed"));
	CHECK(!tlsrpt_parse("[]", 2, 10, why, sizeof why) && strstr(why, "not an object"));
	CHECK(!tlsrpt_parse("{\"organization-name\": \"o\"}", 26, 10, why, sizeof why) && strstr(why, "report-id"));
	{
		int64_t t;
		CHECK(tlsrpt_parse_datetime("2024-01-09T00:00:00.123Z", &t) == 0 && t == 1704758400);
		CHECK(tlsrpt_parse_datetime("2024-01-09", &t) < 0);
		CHECK(tlsrpt_parse_datetime("2024-01-09T00:00:00", &t) < 0);
	}
}

TEST(report_unpack_bounds)
{
	char *out, why[300];
	size_t len, glen;
	enum unpack_format f;
	unsigned char *gz = gzip_text("<feedback/>", &glen);

	CHECK(unpack_any(gz, glen, MIB, &out, &len, &f, why, sizeof why) == 0 && f == UNPACK_GZIP && len == 11 &&
	      !strcmp(out, "<feedback/>"));
	free(out);
	/* truncated */
	CHECK(unpack_any(gz, glen - 6, MIB, &out, &len, &f, why, sizeof why) < 0 && strstr(why, "truncated"));
	CHECK(unpack_any(gz, 12, MIB, &out, &len, &f, why, sizeof why) < 0 && strstr(why, "truncated"));
	free(gz);
	/* a bomb: 256 MiB of zeros, cut off at 1 MiB */
	gz = gzip_fill((size_t)256 * MIB, 0, &glen);
	CHECK(glen < MIB);
	CHECK(unpack_any(gz, glen, MIB, &out, &len, &f, why, sizeof why) < 0 && strstr(why, "more than 1 MiB"));
	CHECK(out == NULL);
	free(gz);
	/* corrupt */
	{
		unsigned char bad[] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff };
		CHECK(unpack_any(bad, sizeof bad, MIB, &out, &len, &f, why, sizeof why) < 0 && strstr(why, "corrupt"));
	}
	/* plain over the bound */
	CHECK(unpack_any((const unsigned char *)"<feedback/>", 11, 5, &out, &len, &f, why, sizeof why) < 0);
	/* a zip that is not one */
	CHECK(unpack_any((const unsigned char *)"PK\3\4garbage", 11, MIB, &out, &len, &f, why, sizeof why) < 0 &&
	      strstr(why, "zip"));
}

static const char MAIL_HEAD[] = "From: noreply-dmarc@example.net\r\n"
				"To: dmarc@example.com\r\n"
				"Subject: Report Domain: example.com\r\n"
				"MIME-Version: 1.0\r\n"
				"Content-Type: multipart/mixed; boundary=\"b1\"\r\n"
				"\r\n"
				"preamble\r\n"
				"--b1\r\n"
				"Content-Type: text/plain\r\n"
				"\r\n"
				"This is a report.\r\n"
				"--b1\r\n"
				"Content-Type: application/gzip; name=\"r.xml.gz\"\r\n"
				"Content-Transfer-Encoding: base64\r\n"
				"\r\n";

static char *b64(const unsigned char *in, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out = malloc(n * 2 + 8), *p = out;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
		*p++ = tab[(v >> 18) & 63];
		*p++ = tab[(v >> 12) & 63];
		*p++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*p++ = i + 2 < n ? tab[v & 63] : '=';
		if ((i / 3) % 19 == 18)
			*p++ = '\n';
	}
	*p = '\0';
	return out;
}

TEST(report_mime_and_parse)
{
	struct report_limits lim = { MIB, 100 };
	char why[300] = "", *mail, *enc;
	size_t glen;
	unsigned char *gz = gzip_text(REPORT, &glen);
	struct report *r;
	struct mime_found f;

	enc = b64(gz, glen);
	mail = malloc(strlen(MAIL_HEAD) + strlen(enc) + 64);
	sprintf(mail, "%s%s\r\n--b1--\r\n", MAIL_HEAD, enc);
	CHECK(mime_find_report(mail, strlen(mail), MIB, &f, why, sizeof why) == 1);
	CHECK_STR(f.content_type, "application/gzip");
	CHECK_STR(f.filename, "r.xml.gz");
	CHECK(f.len == glen && !memcmp(f.data, gz, glen));
	free(f.data);
	r = report_parse(mail, strlen(mail), &lim, why, sizeof why);
	CHECK(r && r->kind == REPORT_DMARC && report_records(r) == 2 && report_messages(r) == 7);
	if (r)
		CHECK_STR(r->via, "mail attachment application/gzip, gzip");
	report_free(r);
	/* the same with LF line ends, as read back from a Maildir */
	{
		char *lf = malloc(strlen(mail) + 1), *o = lf;
		for (const char *p = mail; *p; p++)
			if (*p != '\r')
				*o++ = *p;
		*o = '\0';
		r = report_parse(lf, strlen(lf), &lim, why, sizeof why);
		CHECK(r && report_records(r) == 2);
		report_free(r);
		free(lf);
	}
	/* no attachment */
	CHECK(report_parse("From: a@b\r\nSubject: hi\r\n\r\nhello\r\n", 33, &lim, why, sizeof why) == NULL &&
	      strstr(why, "no report attachment"));
	/* quoted-printable text/xml, and the JSON kind */
	{
		const char *qp = "Content-Type: text/xml\nContent-Transfer-Encoding: quoted-printable\n\n"
				 "<feedback><report_metadata><report_id>q=3D1</report_id><date_range><begin>1</begin>=\n"
				 "<end>2</end></date_range></report_metadata><policy_published><domain>e.example</domain>"
				 "</policy_published></feedback>\n";
		r = report_parse(qp, strlen(qp), &lim, why, sizeof why);
		CHECK(r && !strcmp(report_id(r), "q=1"));
		report_free(r);
		r = report_parse(TLS, strlen(TLS), &lim, why, sizeof why);
		CHECK(r && r->kind == REPORT_TLS && report_records(r) == 1 && report_messages(r) == 5629);
		report_free(r);
	}
	/* too many parts */
	{
		size_t cap = 100000, n = 0;
		char *many = malloc(cap);
		n += (size_t)sprintf(many, "Content-Type: multipart/mixed; boundary=x\n\n");
		for (int i = 0; i < 100; i++)
			n += (size_t)sprintf(many + n, "--x\nContent-Type: text/plain\n\nhi\n");
		sprintf(many + n, "--x--\n");
		CHECK(mime_find_report(many, strlen(many), MIB, &f, why, sizeof why) == -1 && strstr(why, "more than 64"));
		free(many);
	}
	free(mail);
	free(enc);
	free(gz);
}

TEST(report_ip_in)
{
	CHECK(report_ip_in("192.0.2.1", "192.0.2.1"));
	CHECK(report_ip_in("192.0.2.77", "192.0.2.0/24"));
	CHECK(!report_ip_in("192.0.3.1", "192.0.2.0/24"));
	CHECK(report_ip_in("::ffff:192.0.2.9", "192.0.2.0/28"));
	CHECK(report_ip_in("2001:db8::1", "2001:db8::/32"));
	CHECK(!report_ip_in("2001:db9::1", "2001:db8::/32"));
	CHECK(!report_ip_in("192.0.2.1", "2001:db8::/32"));
	CHECK(report_ip_in("10.1.2.3", "0.0.0.0/0"));
	CHECK(!report_ip_in("nonsense", "0.0.0.0/0"));
}

static int count_rows(void *arg, const struct store_dmarc_row *row)
{
	struct store_dmarc_row *sum = arg;
	sum->reports += row->reports;
	sum->messages += row->messages;
	sum->dkim_pass += row->dkim_pass;
	sum->spf_pass += row->spf_pass;
	sum->dmarc_pass += row->dmarc_pass;
	sum->reject += row->reject;
	return 0;
}

static int count_tls(void *arg, const struct store_tls_row *row)
{
	struct store_tls_row *sum = arg;
	sum->reports += row->reports;
	sum->success += row->success;
	sum->failure += row->failure;
	return 0;
}

TEST(report_store_dedup_and_summary)
{
	char dir[64], err[256], why[300];
	struct report_limits lim = { MIB, 100 };
	struct store *st;
	struct report *r, *t;
	struct store_dmarc_row by_rep = { 0 }, by_src = { 0 };
	struct store_tls_row pol = { 0 }, fail = { 0 };

	testlib_mkdtemp(dir, "report");
	st = store_open(dir, err, sizeof err);
	CHECK(st != NULL);
	if (!st)
		return;
	r = report_parse(REPORT, strlen(REPORT), &lim, why, sizeof why);
	t = report_parse(TLS, strlen(TLS), &lim, why, sizeof why);
	CHECK(r && t);
	if (r && t) {
		CHECK_INT(report_save(st, r), REPORT_SAVED);
		CHECK_INT(report_save(st, r), REPORT_DUPLICATE);
		CHECK_INT(report_save(st, t), REPORT_SAVED);
		CHECK_INT(report_save(st, t), REPORT_DUPLICATE);
	}
	CHECK(store_dmarc_summary(st, 0, STORE_DMARC_BY_REPORTER, count_rows, &by_rep) == STORE_OK);
	CHECK(store_dmarc_summary(st, 0, STORE_DMARC_BY_SOURCE, count_rows, &by_src) == STORE_OK);
	CHECK_INT(by_rep.reports, 1);
	CHECK_INT(by_rep.messages, 7);
	CHECK_INT(by_rep.dkim_pass, 5);
	CHECK_INT(by_rep.spf_pass, 2);
	CHECK_INT(by_rep.dmarc_pass, 7);
	CHECK_INT(by_rep.reject, 2);
	CHECK_INT(by_src.reports, 2); /* two sources, one report each */
	CHECK_INT(by_src.messages, 7);
	/* since: after the report's period, nothing */
	memset(&by_rep, 0, sizeof by_rep);
	CHECK(store_dmarc_summary(st, 1800000000, STORE_DMARC_BY_REPORTER, count_rows, &by_rep) == STORE_OK);
	CHECK_INT(by_rep.messages, 0);
	CHECK(store_tls_summary(st, 0, STORE_TLS_BY_POLICY, count_tls, &pol) == STORE_OK);
	CHECK(store_tls_summary(st, 0, STORE_TLS_BY_FAILURE, count_tls, &fail) == STORE_OK);
	CHECK_INT(pol.success, 5326);
	CHECK_INT(pol.failure, 303);
	CHECK_INT(fail.failure, 100);
	report_free(r);
	report_free(t);
	store_close(st);
	testlib_rmtree(dir);
}

TEST(report_config_keys)
{
	char dir[64];
	const char *path;
	struct config *cfg;
	FILE *err = tmpfile();
	char buf[2048] = "";

	testlib_mkdtemp(dir, "reportcfg");
	path = testlib_write(dir, "p.conf",
			     "[server]\ndomains = example.org\n[reports]\n"
			     "dmarc_address = DMARC@example.org, tls@example.org\n"
			     "our_addresses = 192.0.2.1, 2001:db8::/32\nmax_records = 10\n");
	cfg = config_load(path, err);
	CHECK(cfg != NULL);
	if (cfg) {
		CHECK_INT(cfg->nreport_addresses, 2);
		CHECK_STR(cfg->report_addresses[0], "dmarc@example.org");
		CHECK_INT(cfg->nour_addresses, 2);
		CHECK_INT(cfg->reports_max_records, 10);
		CHECK_INT(cfg->reports_max_size, 32 * MIB);
	}
	config_free(cfg);
	path = testlib_write(dir, "bad.conf",
			     "[server]\ndomains = example.org\n[reports]\ntls_address = nobody\n"
			     "our_addresses = 192.0.2.300/24, 10.0.0.0/33\n");
	cfg = config_load(path, err);
	CHECK(cfg == NULL);
	rewind(err);
	fread(buf, 1, sizeof buf - 1, err);
	CHECK(strstr(buf, "bad.conf:4: tls_address: 'nobody' is not an address") != NULL);
	CHECK(strstr(buf, "bad.conf:5: our_addresses: '192.0.2.300/24' is not an IP address or network") != NULL);
	CHECK(strstr(buf, "'10.0.0.0/33'") != NULL);
	fclose(err);
	testlib_rmtree(dir);
}
