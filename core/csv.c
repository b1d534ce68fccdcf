/* csv.c — a strict, streaming CSV reader for numeric datasets.
 *
 * Grammar: an optional UTF-8 byte-order mark, a header row of column names
 * (optionally double-quoted, "" inside quotes for a quote), then rows of numbers.
 * Fields are separated by ',' and may carry spaces or tabs around them; lines end
 * in LF or CRLF; the last line may lack its newline; blank lines are skipped.
 * Every row has the header's column count. Numbers follow the JSON-like grammar
 * [+-]digits[.digits][(e|E)[+-]digits] (a leading or trailing '.' is allowed);
 * NaN, Inf, empty fields and trailing garbage are rejected. Values are converted
 * with strtod after the grammar check, so the C locale's '.' is assumed.
 *
 * Feeding is byte-exact across any split: the parser is a state machine over
 * single bytes. Limits (input bytes, samples, features, output bytes) are checked
 * as data arrives; memory grows geometrically with the rows. The first error is
 * sticky: later feed/finish calls return it again. Errors name the 1-based line
 * (the header is line 1 unless blank lines precede it) and the 1-based column. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nn_int.h"

#define CSV_TOKEN_MAX 1024  /* longest name or number, in bytes */

enum {
    F_LEAD,      /* before a field's content: skipping spaces */
    F_TOKEN,     /* inside an unquoted field */
    F_TRAIL,     /* spaces after a number (data rows only) */
    F_QUOTED,    /* inside a quoted header name */
    F_QUOTE_END  /* just read a '"' inside a quoted name */
};

struct nn_csv_parser {
    nn_limits lim;
    char *label_name; /* owned copy, or NULL */
    int label_index;
    nn_error err;     /* the sticky first error */
    size_t fed;       /* input bytes seen */
    int bom_n;        /* BOM bytes matched so far; -1 once decided */
    int cr;           /* a '\r' waits for its '\n' */
    size_t line;      /* current line, 1-based */
    int col;          /* current field, 1-based */
    int fstate;
    int extra;        /* the row has more fields than the header: only counting */
    char tok[CSV_TOKEN_MAX + 1];
    size_t tok_len;
    /* header */
    int header_done;
    char **names;
    int n_cols, names_cap;
    int label;        /* resolved label column, 0-based */
    /* rows */
    float *row;       /* [n_cols] the row being read */
    float *x, *y;     /* [cap, n_cols - 1], [cap] */
    size_t n, cap;
};

static nn_limits csv_limits(const nn_limits *in)
{
    nn_limits d = nn_limits_default();
    if (in) {
        if (in->max_bytes) d.max_bytes = in->max_bytes;
        if (in->max_samples) d.max_samples = in->max_samples;
        if (in->max_features) d.max_features = in->max_features;
    }
    return d;
}

nn_csv_options nn_csv_default(void)
{
    nn_csv_options o;
    memset(&o, 0, sizeof o);
    o.label_name = NULL;
    o.label_index = -1;
    return o;
}

/* Record the parser's sticky error (first wins) and copy it to the caller's. */
#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static nn_status csv_fail(nn_csv_parser *p, nn_error *err, nn_status code, const char *fmt, ...)
{
    if (p->err.code == NN_OK) {
        va_list ap;
        va_start(ap, fmt);
        p->err.code = code;
        vsnprintf(p->err.message, sizeof p->err.message, fmt, ap);
        va_end(ap);
    }
    return nn_error_set(err, p->err.code, "%s", p->err.message);
}

/* "line L, column C (name)" for the current field; the name once the header is known. */
static const char *csv_where(const nn_csv_parser *p, char *buf, size_t size)
{
    if (p->header_done && p->col >= 1 && p->col <= p->n_cols)
        snprintf(buf, size, "line %zu, column %d (%.40s)", p->line, p->col, p->names[p->col - 1]);
    else
        snprintf(buf, size, "line %zu, column %d", p->line, p->col);
    return buf;
}

nn_csv_parser *nn_csv_parser_new(const nn_csv_options *opt, nn_error *err)
{
    nn_csv_options def = nn_csv_default();
    nn_csv_parser *p = NULL;
    if (!opt) opt = &def;
    p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    p->lim = csv_limits(&opt->limits);
    p->label_index = opt->label_index;
    if (opt->label_name) {
        size_t n = strlen(opt->label_name);
        p->label_name = malloc(n + 1);
        if (!p->label_name) goto nomem;
        memcpy(p->label_name, opt->label_name, n + 1);
    }
    p->line = 1;
    p->col = 1;
    p->fstate = F_LEAD;
    return p;
nomem:
    nn_csv_parser_free(p);
    nn_error_set(err, NN_ERR_NOMEM, "out of memory creating a CSV parser");
    return NULL;
}

void nn_csv_parser_free(nn_csv_parser *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_cols; i++) free(p->names[i]);
    free(p->names);
    free(p->label_name);
    free(p->row);
    free(p->x);
    free(p->y);
    free(p);
}

/* 0 = ok; 1 = not a number; 2 = NaN or Inf; 3 = outside float32's range. */
static int csv_number(const char *s, size_t len, float *out)
{
    size_t i = 0, int_digits = 0, frac_digits = 0;
    if (s[i] == '+' || s[i] == '-') i++;
    if ((len - i >= 3 && (strncasecmp(s + i, "nan", 3) == 0 || strncasecmp(s + i, "inf", 3) == 0)))
        return 2;
    while (i < len && isdigit((unsigned char)s[i])) i++, int_digits++;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && isdigit((unsigned char)s[i])) i++, frac_digits++;
    }
    if (int_digits + frac_digits == 0) return 1;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp_digits = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) i++;
        while (i < len && isdigit((unsigned char)s[i])) i++, exp_digits++;
        if (exp_digits == 0) return 1;
    }
    if (i != len) return 1;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end != s + len) return 1; /* a locale whose decimal point is not '.' */
    if (!isfinite(v)) return 3;
    float f = (float)v;
    if (!isfinite(f)) return 3;
    *out = f;
    return 0;
}

static nn_status csv_add_name(nn_csv_parser *p, nn_error *err)
{
    /* adding this column makes n_cols features besides the label */
    if ((size_t)p->n_cols > p->lim.max_features || p->n_cols == INT_MAX - 1)
        return csv_fail(p, err, NN_ERR_LIMIT, "line %zu: more than %zu feature columns (limit)",
                        p->line, p->lim.max_features);
    if (p->n_cols == p->names_cap) {
        int ncap = p->names_cap ? p->names_cap * 2 : 16;
        char **nn = realloc(p->names, (size_t)ncap * sizeof *nn);
        if (!nn) return csv_fail(p, err, NN_ERR_NOMEM, "out of memory reading the CSV header");
        p->names = nn;
        p->names_cap = ncap;
    }
    char *s = malloc(p->tok_len + 1);
    if (!s) return csv_fail(p, err, NN_ERR_NOMEM, "out of memory reading the CSV header");
    memcpy(s, p->tok, p->tok_len);
    s[p->tok_len] = 0;
    p->names[p->n_cols++] = s;
    return NN_OK;
}

static nn_status csv_header_done(nn_csv_parser *p, nn_error *err)
{
    if (p->n_cols < 2)
        return csv_fail(p, err, NN_ERR_PARSE,
                        "line %zu: the header has %d column; need at least one feature and a label",
                        p->line, p->n_cols);
    if (p->label_name) {
        p->label = -1;
        for (int i = 0; i < p->n_cols; i++) {
            if (strcmp(p->names[i], p->label_name) != 0) continue;
            if (p->label >= 0)
                return csv_fail(p, err, NN_ERR_INVALID, "label column '%.64s' appears more than once",
                                p->label_name);
            p->label = i;
        }
        if (p->label < 0)
            return csv_fail(p, err, NN_ERR_INVALID, "label column '%.64s' is not in the header",
                            p->label_name);
    } else {
        int idx = p->label_index < 0 ? p->n_cols + p->label_index : p->label_index;
        if (idx < 0 || idx >= p->n_cols)
            return csv_fail(p, err, NN_ERR_INVALID, "label index %d out of range for %d columns",
                            p->label_index, p->n_cols);
        p->label = idx;
    }
    p->row = malloc((size_t)p->n_cols * sizeof *p->row);
    if (!p->row) return csv_fail(p, err, NN_ERR_NOMEM, "out of memory reading the CSV");
    p->header_done = 1;
    return NN_OK;
}

/* End of field `col` in a data row: convert the token. */
static nn_status csv_data_field(nn_csv_parser *p, nn_error *err)
{
    const char *what = NULL;
    float v = 0.0f;
    if (p->tok_len == 0) {
        what = "empty value";
    } else if (memchr(p->tok, 0, p->tok_len)) { /* the value shown would end at it */
        what = "a NUL byte in the value";
    } else {
        p->tok[p->tok_len] = 0;
        switch (csv_number(p->tok, p->tok_len, &v)) {
        case 0: break;
        case 2: what = "NaN and Inf are not allowed"; break;
        case 3: what = "number outside the float32 range"; break;
        default: what = "not a number"; break;
        }
    }
    if (what) {
        char where[96];
        return csv_fail(p, err, NN_ERR_PARSE, "%s: %s '%.32s'", csv_where(p, where, sizeof where),
                        what, p->tok_len ? p->tok : "");
    }
    p->row[p->col - 1] = v;
    return NN_OK;
}

/* Append the completed row to x and y, growing them geometrically. */
static nn_status csv_commit_row(nn_csv_parser *p, nn_error *err)
{
    size_t xw = (size_t)p->n_cols - 1;
    if (p->n >= p->lim.max_samples)
        return csv_fail(p, err, NN_ERR_LIMIT, "line %zu: more than %zu samples (limit)", p->line,
                        p->lim.max_samples);
    if ((p->n + 1) > p->lim.max_bytes / sizeof(float) / (size_t)p->n_cols)
        return csv_fail(p, err, NN_ERR_LIMIT, "line %zu: the dataset exceeds %zu bytes (limit)",
                        p->line, p->lim.max_bytes);
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 64;
        if (ncap > (size_t)-1 / sizeof(float) / (size_t)p->n_cols)
            return csv_fail(p, err, NN_ERR_NOMEM, "out of memory reading the CSV");
        float *nx = realloc(p->x, ncap * xw * sizeof *nx);
        if (!nx) return csv_fail(p, err, NN_ERR_NOMEM, "out of memory reading the CSV");
        p->x = nx;
        float *ny = realloc(p->y, ncap * sizeof *ny);
        if (!ny) return csv_fail(p, err, NN_ERR_NOMEM, "out of memory reading the CSV");
        p->y = ny;
        p->cap = ncap;
    }
    float *xr = p->x + p->n * xw;
    for (int i = 0, j = 0; i < p->n_cols; i++) {
        if (i == p->label) p->y[p->n] = p->row[i];
        else xr[j++] = p->row[i];
    }
    p->n++;
    return NN_OK;
}

/* A ',' or end of line ends the current field. */
static nn_status csv_end_field(nn_csv_parser *p, int eol, nn_error *err)
{
    nn_status rc = NN_OK;
    if (p->extra) {
        if (!eol) {
            if (p->col < INT_MAX) p->col++;
            return NN_OK;
        }
        return csv_fail(p, err, NN_ERR_PARSE, "line %zu: expected %d columns, found %d", p->line,
                        p->n_cols, p->col);
    }
    if (eol && p->col == 1 && p->fstate == F_LEAD) return NN_OK; /* blank line */
    if (p->fstate == F_QUOTED)
        return csv_fail(p, err, NN_ERR_PARSE, "line %zu, column %d: unterminated quoted name",
                        p->line, p->col);
    if (!p->header_done) {
        if (p->fstate == F_TOKEN)
            while (p->tok_len && (p->tok[p->tok_len - 1] == ' ' || p->tok[p->tok_len - 1] == '\t'))
                p->tok_len--;
        rc = csv_add_name(p, err);
        if (rc == NN_OK && eol) rc = csv_header_done(p, err);
    } else {
        rc = csv_data_field(p, err);
        if (rc == NN_OK && !eol && p->col == p->n_cols) p->extra = 1;
        if (rc == NN_OK && eol) {
            if (p->col != p->n_cols)
                return csv_fail(p, err, NN_ERR_PARSE, "line %zu: expected %d columns, found %d",
                                p->line, p->n_cols, p->col);
            rc = csv_commit_row(p, err);
        }
    }
    p->tok_len = 0;
    p->fstate = F_LEAD;
    p->col++;
    return rc;
}

static nn_status csv_char(nn_csv_parser *p, int c, nn_error *err)
{
    char where[96];
    nn_status rc;
    if (p->cr) {
        p->cr = 0;
        if (c != '\n')
            return csv_fail(p, err, NN_ERR_PARSE, "line %zu: carriage return without line feed",
                            p->line);
    }
    if (c == '\r') {
        p->cr = 1;
        return NN_OK;
    }
    if (c == '\n') {
        rc = csv_end_field(p, 1, err);
        if (rc != NN_OK) return rc;
        p->line++;
        p->col = 1;
        p->extra = 0;
        return NN_OK;
    }
    if (p->extra) return c == ',' ? csv_end_field(p, 0, err) : NN_OK;
    if (p->fstate == F_QUOTED) {
        if (c == '"') p->fstate = F_QUOTE_END;
        else goto append;
        return NN_OK;
    }
    if (c == ',') return csv_end_field(p, 0, err);
    int space = c == ' ' || c == '\t';
    switch (p->fstate) {
    case F_LEAD:
        if (space) return NN_OK;
        if (c == '"' && !p->header_done) {
            p->fstate = F_QUOTED;
            return NN_OK;
        }
        p->fstate = F_TOKEN;
        goto append;
    case F_TOKEN:
        if (space && p->header_done) {
            p->fstate = F_TRAIL;
            return NN_OK;
        }
        goto append;
    case F_QUOTE_END:
        if (c == '"') {
            p->fstate = F_QUOTED;
            goto append;
        }
        if (space) {
            p->fstate = F_TRAIL;
            return NN_OK;
        }
        break;
    case F_TRAIL:
        if (space) return NN_OK;
        break;
    }
    p->tok[p->tok_len] = 0;
    return csv_fail(p, err, NN_ERR_PARSE, "%s: unexpected '%c' after '%.32s'",
                    csv_where(p, where, sizeof where), isprint(c) ? c : '?', p->tok);
append:
    if (p->tok_len == CSV_TOKEN_MAX)
        return csv_fail(p, err, NN_ERR_PARSE, "%s: field longer than %d bytes",
                        csv_where(p, where, sizeof where), CSV_TOKEN_MAX);
    p->tok[p->tok_len++] = (char)c;
    return NN_OK;
}

/* Skips a UTF-8 byte-order mark at the very start; replays a partial match. */
static nn_status csv_byte(nn_csv_parser *p, int c, nn_error *err)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    if (p->bom_n >= 0) {
        if (c == bom[p->bom_n]) {
            if (++p->bom_n == 3) p->bom_n = -1;
            return NN_OK;
        }
        int k = p->bom_n;
        p->bom_n = -1;
        for (int i = 0; i < k; i++) {
            nn_status rc = csv_char(p, bom[i], err);
            if (rc != NN_OK) return rc;
        }
    }
    return csv_char(p, c, err);
}

nn_status nn_csv_parser_feed(nn_csv_parser *p, const void *buf, size_t len, nn_error *err)
{
    const unsigned char *s = buf;
    if (!p || (!buf && len)) return nn_error_set(err, NN_ERR_INVALID, "nn_csv_parser_feed: NULL argument");
    if (p->err.code != NN_OK) return nn_error_set(err, p->err.code, "%s", p->err.message);
    if (len > p->lim.max_bytes - p->fed)
        return csv_fail(p, err, NN_ERR_LIMIT, "the CSV exceeds %zu bytes (limit)", p->lim.max_bytes);
    p->fed += len;
    for (size_t i = 0; i < len; i++) {
        nn_status rc = csv_byte(p, s[i], err);
        if (rc != NN_OK) return rc;
    }
    return NN_OK;
}

nn_status nn_csv_parser_finish(nn_csv_parser *p, nn_dataset *out, nn_error *err)
{
    nn_status rc = NN_OK;
    if (!p || !out) return nn_error_set(err, NN_ERR_INVALID, "nn_csv_parser_finish: NULL argument");
    memset(out, 0, sizeof *out);
    if (p->err.code != NN_OK) return nn_error_set(err, p->err.code, "%s", p->err.message);
    if (p->bom_n > 0) { /* a partial byte-order mark, then end of input */
        static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
        int k = p->bom_n;
        p->bom_n = -1;
        for (int i = 0; i < k && rc == NN_OK; i++) rc = csv_char(p, bom[i], err);
        if (rc != NN_OK) return rc;
    }
    if (p->cr || p->col > 1 || p->fstate != F_LEAD || p->extra) {
        rc = csv_char(p, '\n', err); /* the last line had no newline */
        if (rc != NN_OK) return rc;
    }
    if (!p->header_done)
        return csv_fail(p, err, NN_ERR_PARSE, "empty CSV: no header row");
    if (p->n == 0)
        return csv_fail(p, err, NN_ERR_PARSE, "the CSV has a header but no data rows");
    size_t xw = (size_t)p->n_cols - 1;
    float *nx = realloc(p->x, p->n * xw * sizeof *nx); /* give back the growth slack */
    if (nx) p->x = nx;
    float *ny = realloc(p->y, p->n * sizeof *ny);
    if (ny) p->y = ny;
    out->n = p->n;
    out->x_width = (int)xw;
    out->y_width = 1;
    out->x = p->x;
    out->y = p->y;
    p->x = p->y = NULL;
    p->n = p->cap = 0;
    p->err.code = NN_ERR_INVALID; /* the parser is spent */
    snprintf(p->err.message, sizeof p->err.message, "the CSV parser has already finished");
    nn_dataset_describe(out);
    return NN_OK;
}

static nn_status csv_feed(void *p, const void *buf, size_t len, nn_error *err)
{
    return nn_csv_parser_feed(p, buf, len, err);
}

nn_status nn_csv_load_file(const char *path, const nn_csv_options *opt, nn_dataset *out, nn_error *err)
{
    if (!path || !out) return nn_error_set(err, NN_ERR_INVALID, "nn_csv_load_file: NULL argument");
    memset(out, 0, sizeof *out);
    nn_csv_parser *p = nn_csv_parser_new(opt, err);
    if (!p) return err && err->code ? err->code : NN_ERR_NOMEM;
    nn_status rc = nn_feed_file(path, csv_feed, p, err);
    if (rc == NN_OK) rc = nn_csv_parser_finish(p, out, err);
    nn_csv_parser_free(p);
    return rc;
}
