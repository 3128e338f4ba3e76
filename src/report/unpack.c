/*
 * unpack: see unpack.h. The gzip reader inflates with a fixed output chunk
 * and stops the moment the output would pass max_out, so a 1 GiB bomb costs
 * at most max_out bytes of memory and the time to inflate them. Concatenated
 * gzip members (RFC 1952 section 2.2) are read one after another under the
 * same bound. The zip reader checks the entry count and each entry's
 * declared size before reading, then reads at most max_out + 1 bytes anyway
 * (a declared size can lie).
 */
#include "report/unpack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>
#include <zlib.h>

#include "lib/util.h"

enum unpack_format unpack_detect(const unsigned char *in, size_t len)
{
	if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b)
		return UNPACK_GZIP;
	if (len >= 4 && in[0] == 'P' && in[1] == 'K' && in[2] == 3 && in[3] == 4)
		return UNPACK_ZIP;
	return UNPACK_PLAIN;
}

const char *unpack_format_name(enum unpack_format f)
{
	return f == UNPACK_GZIP ? "gzip" : f == UNPACK_ZIP ? "zip" : "plain";
}

static void size_text(char *buf, size_t n, size_t bytes)
{
	if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0)
		snprintf(buf, n, "%zu MiB", bytes / (1024 * 1024));
	else if (bytes >= 1024 && bytes % 1024 == 0)
		snprintf(buf, n, "%zu KiB", bytes / 1024);
	else
		snprintf(buf, n, "%zu bytes", bytes);
}

static int too_big(size_t max_out, const char *what, char *why, size_t whysize)
{
	char s[64];
	size_text(s, sizeof s, max_out);
	snprintf(why, whysize, "%s would decompress to more than %s ([reports] max_size); refused", what, s);
	return -1;
}

static int gunzip(const unsigned char *in, size_t len, size_t max_out, char **out, size_t *outlen, char *why,
		  size_t whysize)
{
	z_stream z;
	size_t cap = len * 4 < 65536 ? 65536 : len * 4, n = 0;
	char *buf;
	int rc = Z_OK;

	if (cap > max_out + 1)
		cap = max_out + 1;
	buf = xmalloc(cap + 1);
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
		free(buf);
		snprintf(why, whysize, "cannot start zlib");
		return -1;
	}
	z.next_in = (unsigned char *)in;
	z.avail_in = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
	for (;;) {
		if (n == cap) {
			if (cap > max_out) {
				inflateEnd(&z);
				free(buf);
				return too_big(max_out, "the gzip data", why, whysize);
			}
			cap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		z.next_out = (unsigned char *)buf + n;
		z.avail_out = (uInt)(cap - n);
		rc = inflate(&z, Z_NO_FLUSH);
		n = cap - z.avail_out;
		if (rc == Z_STREAM_END) {
			/* Another member may follow (RFC 1952 section 2.2). */
			if (z.avail_in > 0 && z.next_in[0] == 0x1f) {
				if (inflateReset(&z) != Z_OK)
					break;
				continue;
			}
			break;
		}
		if (rc == Z_BUF_ERROR && z.avail_in == 0) {
			inflateEnd(&z);
			free(buf);
			snprintf(why, whysize, "the gzip data is truncated (it ends before the end of its stream)");
			return -1;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR) {
			snprintf(why, whysize, "the gzip data is corrupt (%s)", z.msg ? z.msg : "zlib error");
			inflateEnd(&z);
			free(buf);
			return -1;
		}
	}
	inflateEnd(&z);
	if (n > max_out) {
		free(buf);
		return too_big(max_out, "the gzip data", why, whysize);
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && !strcasecmp(s + ls - lx, suffix);
}

static int unzip(const unsigned char *in, size_t len, size_t max_out, char **out, size_t *outlen, char *why,
		 size_t whysize)
{
	zip_error_t ze;
	zip_source_t *src;
	zip_t *za;
	zip_int64_t nent, pick = -1;
	zip_file_t *zf;
	struct zip_stat zs;
	char *buf;
	size_t n = 0;

	zip_error_init(&ze);
	src = zip_source_buffer_create(in, len, 0, &ze);
	if (!src) {
		snprintf(why, whysize, "cannot read the zip archive: %s", zip_error_strerror(&ze));
		zip_error_fini(&ze);
		return -1;
	}
	za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
	if (!za) {
		snprintf(why, whysize, "the zip archive is corrupt: %s", zip_error_strerror(&ze));
		zip_source_free(src);
		zip_error_fini(&ze);
		return -1;
	}
	zip_error_fini(&ze);
	nent = zip_get_num_entries(za, 0);
	if (nent > UNPACK_ZIP_MAX_ENTRIES) {
		snprintf(why, whysize, "the zip archive has %lld entries (at most %d are read); refused", (long long)nent,
			 UNPACK_ZIP_MAX_ENTRIES);
		zip_discard(za);
		return -1;
	}
	for (zip_int64_t i = 0; i < nent; i++) {
		const char *name = zip_get_name(za, (zip_uint64_t)i, 0);
		if (!name || has_suffix(name, "/"))
			continue;
		if (nent == 1 || has_suffix(name, ".xml") || has_suffix(name, ".json")) {
			if (pick >= 0) {
				snprintf(why, whysize, "the zip archive holds more than one report file");
				zip_discard(za);
				return -1;
			}
			pick = i;
		}
	}
	if (pick < 0) {
		snprintf(why, whysize, "the zip archive holds no .xml or .json report");
		zip_discard(za);
		return -1;
	}
	if (zip_stat_index(za, (zip_uint64_t)pick, 0, &zs) == 0 && (zs.valid & ZIP_STAT_SIZE) && zs.size > max_out) {
		zip_discard(za);
		return too_big(max_out, "the zip entry", why, whysize);
	}
	zf = zip_fopen_index(za, (zip_uint64_t)pick, 0);
	if (!zf) {
		snprintf(why, whysize, "cannot open the zip entry: %s", zip_strerror(za));
		zip_discard(za);
		return -1;
	}
	buf = xmalloc(65536 + 1);
	{
		size_t cap = 65536;
		for (;;) {
			zip_int64_t r;
			if (n == cap) {
				if (cap > max_out) {
					zip_fclose(zf);
					zip_discard(za);
					free(buf);
					return too_big(max_out, "the zip entry", why, whysize);
				}
				cap = cap * 2 > max_out + 1 ? max_out + 1 : cap * 2;
				buf = xrealloc(buf, cap + 1);
			}
			r = zip_fread(zf, buf + n, cap - n);
			if (r < 0) {
				snprintf(why, whysize, "the zip entry is corrupt: %s", zip_file_strerror(zf));
				zip_fclose(zf);
				zip_discard(za);
				free(buf);
				return -1;
			}
			if (r == 0)
				break;
			n += (size_t)r;
		}
	}
	zip_fclose(zf);
	zip_discard(za);
	if (n > max_out) {
		free(buf);
		return too_big(max_out, "the zip entry", why, whysize);
	}
	buf[n] = '\0';
	*out = buf;
	*outlen = n;
	return 0;
}

int unpack_any(const unsigned char *in, size_t len, size_t max_out, char **out, size_t *outlen,
	       enum unpack_format *format, char *why, size_t whysize)
{
	enum unpack_format f = unpack_detect(in, len);
	int rc;

	*out = NULL;
	*outlen = 0;
	if (format)
		*format = f;
	if (f == UNPACK_PLAIN) {
		if (len > max_out)
			return too_big(max_out, "the report", why, whysize);
		*out = xmalloc(len + 1);
		memcpy(*out, in, len);
		(*out)[len] = '\0';
		*outlen = len;
		return 0;
	}
	rc = f == UNPACK_GZIP ? gunzip(in, len, max_out, out, outlen, why, whysize)
			      : unzip(in, len, max_out, out, outlen, why, whysize);
	if (rc == 0 && unpack_detect((unsigned char *)*out, *outlen) != UNPACK_PLAIN) {
		snprintf(why, whysize, "a %s archive inside a %s archive; refused", unpack_format_name(unpack_detect(
			(unsigned char *)*out, *outlen)), unpack_format_name(f));
		free(*out);
		*out = NULL;
		*outlen = 0;
		return -1;
	}
	return rc;
}
