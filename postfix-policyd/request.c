/*
 * request - the bounded, incremental policy request reader. See request.h.
 */
#include "request.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"

#define NAME(s) { s, sizeof(s) - 1 }
static const struct {
	const char *text;
	size_t len;
} attr_names[PD_ATTR_COUNT] = {
	NAME("request"), NAME("protocol_state"), NAME("client_address"),
	NAME("instance"), NAME("sender"), NAME("sasl_method"),
	NAME("sasl_username"), NAME("encryption_protocol"),
	NAME("helo_name"), NAME("client_name"), NAME("reverse_client_name"),
	NAME("client_port"), NAME("server_port"),
};

const char *pd_attr_name(enum pd_attr attr)
{
	return (unsigned)attr < PD_ATTR_COUNT ? attr_names[attr].text : "?";
}

void pd_reader_init(struct pd_reader *reader)
{
	/* Only the bookkeeping needs clearing: values are read through len. */
	memset(reader->req.len, 0, sizeof(reader->req.len));
	memset(reader->req.present, 0, sizeof(reader->req.present));
	reader->req.attrs = 0;
	reader->req.bytes = 0;
	for (int a = 0; a < PD_ATTR_COUNT; a++)
		reader->req.value[a][0] = '\0';
}

bool pd_reader_started(const struct pd_reader *reader)
{
	return reader->req.bytes > 0;
}

/* Bytes of an attribute name: [A-Za-z0-9_.-]. */
static const unsigned char name_bytes[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1,
	['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1,
	['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
	['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1,
	['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1,
	['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1,
	['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,
	['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

/* Why a line that is not "name=value" is wrong. */
static void explain_bad_line(const struct pd_request *req, const char *line,
			     size_t len, char *why, size_t whylen)
{
	char shown[80];
	const char *eq = memchr(line, '=', len);

	if (memchr(line, '\0', len) != NULL)
		snprintf(why, whylen, "NUL byte in attribute line %u", req->attrs + 1);
	else if (eq == NULL)
		snprintf(why, whylen, "line without '=': \"%s\"",
			 tg_sanitize(line, len, 40, shown, sizeof(shown)));
	else
		snprintf(why, whylen, "bad attribute name \"%s\"",
			 tg_sanitize(line, (size_t)(eq - line), 40, shown, sizeof(shown)));
}

/* One "name=value" line without its line end. One pass over the name,
 * memchr over the value: this runs 29 times per request. */
static int read_attribute(struct pd_request *req, const char *line, size_t len,
			  char *why, size_t whylen)
{
	size_t name_len = 0;
	while (name_len < len && name_bytes[(unsigned char)line[name_len]])
		name_len++;
	if (name_len == len || line[name_len] != '=' || name_len == 0 ||
	    name_len > PD_MAX_NAME) {
		explain_bad_line(req, line, len, why, whylen);
		return -1;
	}
	const char *value = line + name_len + 1;
	size_t vlen = len - name_len - 1;
	if (vlen > 0 && memchr(value, '\0', vlen) != NULL) {
		explain_bad_line(req, line, len, why, whylen);
		return -1;
	}
	if (++req->attrs > PD_MAX_ATTRS) {
		snprintf(why, whylen, "more than %d attributes in one request",
			 PD_MAX_ATTRS);
		return -1;
	}
	for (int a = 0; a < PD_ATTR_COUNT; a++) {
		if (attr_names[a].len != name_len || attr_names[a].text[0] != line[0] ||
		    memcmp(attr_names[a].text, line, name_len) != 0)
			continue;
		/* vlen <= PD_MAX_LINE: the caller checked the line length. */
		memcpy(req->value[a], value, vlen);
		req->value[a][vlen] = '\0';
		req->len[a] = vlen;
		req->present[a] = true;	/* a later duplicate overwrites */
		break;
	}
	return 0;
}

int pd_reader_feed(struct pd_reader *reader, const char *buf, size_t len,
		   size_t *used, char *why, size_t whylen)
{
	struct pd_request *req = &reader->req;
	size_t pos = 0;

	*used = 0;
	if (req->attrs == 0 && req->bytes == 0)
		pd_reader_init(reader);
	while (pos < len) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t avail = nl != NULL ? (size_t)(nl - line) : len - pos;

		/* An unfinished line is checked now, so that a peer cannot make
		 * us wait for the end of an endless line. A CR may still
		 * follow a line of exactly PD_MAX_LINE bytes. */
		size_t line_len = avail;
		if (nl != NULL && line_len > 0 && line[line_len - 1] == '\r')
			line_len--;
		if (line_len > PD_MAX_LINE + (nl == NULL)) {
			snprintf(why, whylen, "line longer than %d bytes", PD_MAX_LINE);
			return -1;
		}
		if (req->bytes + avail + (nl != NULL) > PD_MAX_REQUEST) {
			snprintf(why, whylen, "request longer than %d bytes", PD_MAX_REQUEST);
			return -1;
		}
		if (nl == NULL)
			break;
		req->bytes += avail + 1;
		pos += avail + 1;
		*used = pos;
		if (line_len == 0) {
			if (req->attrs == 0) {
				snprintf(why, whylen, "empty request (empty line without attributes)");
				return -1;
			}
			/* Complete; the next feed starts afresh. */
			req->bytes = 0;
			req->attrs = 0;
			return 1;
		}
		if (read_attribute(req, line, line_len, why, whylen) < 0)
			return -1;
	}
	return 0;
}
