/*
 * test_svg.c — the chart renderer (server/svg.c): every chart is checked by a
 * small XML well-formedness parser below (tags balance, attributes quoted, only
 * the five predefined entities and character references, no raw '<' or '&' in
 * text, one root element) that also counts elements and collects their
 * attributes; then the content: tick values, escaping, gaps for NaN, the fill,
 * the mark, the legend, log axes, degenerate and extreme data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"
#include "support.h"

/* ---------------------------------------------------------------- a tiny XML checker */

#define XC_MAX_DEPTH 64
#define XC_MAX_SEEN 4096

typedef struct xml_el {
    char name[32];
    const char *attrs; /* points into the document: the text between name and '>' */
    size_t attrs_len;
    const char *text;  /* the first text child (points into the document) */
    size_t text_len;
} xml_el;

typedef struct xml_doc {
    int n;
    xml_el el[XC_MAX_SEEN];
    char error[160];
} xml_doc;

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == ':' || c == '.';
}

/* An entity or character reference at p ('&'); returns its length or 0. */
static size_t xml_ref(const char *p)
{
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (size_t i = 0; i < 5; i++)
        if (strncmp(p, named[i], strlen(named[i])) == 0) return strlen(named[i]);
    if (p[1] != '#') return 0;
    size_t n = 2;
    int hex = p[2] == 'x';
    if (hex) n++;
    size_t digits = 0;
    while ((hex ? strchr("0123456789abcdefABCDEF", p[n]) : strchr("0123456789", p[n])) &&
           p[n]) {
        n++;
        digits++;
    }
    return digits && p[n] == ';' ? n + 1 : 0;
}

/* Character data up to the next '<' (or a quote when `quote`): no bare '&', no
 * '<' inside attribute values, no control characters. */
static const char *xml_chars(const char *p, char quote, xml_doc *d)
{
    while (*p && *p != '<' && *p != quote) {
        if ((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t' && *p != '\r') {
            snprintf(d->error, sizeof d->error, "control character 0x%02x", *p);
            return NULL;
        }
        if (*p == '&') {
            size_t n = xml_ref(p);
            if (!n) {
                snprintf(d->error, sizeof d->error, "bare '&' at \"%.20s\"", p);
                return NULL;
            }
            p += n;
        } else {
            p++;
        }
    }
    return p;
}

/* Returns 0 when `s` is a well-formed document; fills d (elements in document order). */
static int xml_parse(const char *s, xml_doc *d)
{
    const char *stack[XC_MAX_DEPTH];
    size_t stack_len[XC_MAX_DEPTH];
    int depth = 0, roots = 0;
    const char *p = s;
    memset(d, 0, sizeof *d);
    if (strncmp(p, "<?xml ", 6) == 0) {
        p = strstr(p, "?>");
        if (!p) return snprintf(d->error, sizeof d->error, "unterminated prolog"), -1;
        p += 2;
    }
    while (*p) {
        if (*p != '<') {
            const char *t = p;
            p = xml_chars(p, 0, d);
            if (!p) return -1;
            if (depth == 0)
                for (; t < p; t++)
                    if (*t != ' ' && *t != '\n' && *t != '\t' && *t != '\r')
                        return snprintf(d->error, sizeof d->error, "text outside the root"), -1;
            continue;
        }
        if (p[1] == '/') { /* end tag */
            const char *n = p + 2;
            size_t len = 0;
            while (is_name_char(n[len])) len++;
            if (depth == 0 || len != stack_len[depth - 1] || strncmp(n, stack[depth - 1], len))
                return snprintf(d->error, sizeof d->error, "mismatched </%.*s>", (int)len, n), -1;
            depth--;
            p = n + len;
            while (*p == ' ') p++;
            if (*p != '>') return snprintf(d->error, sizeof d->error, "bad end tag"), -1;
            p++;
            continue;
        }
        if (strncmp(p, "<!--", 4) == 0) {
            p = strstr(p, "-->");
            if (!p) return snprintf(d->error, sizeof d->error, "unterminated comment"), -1;
            p += 3;
            continue;
        }
        /* start tag */
        const char *n = p + 1;
        size_t len = 0;
        while (is_name_char(n[len])) len++;
        if (len == 0 || len >= sizeof d->el[0].name)
            return snprintf(d->error, sizeof d->error, "bad tag at \"%.20s\"", p), -1;
        if (depth == 0 && ++roots > 1)
            return snprintf(d->error, sizeof d->error, "second root element"), -1;
        xml_el *e = d->n < XC_MAX_SEEN ? &d->el[d->n++] : NULL;
        if (e) {
            memcpy(e->name, n, len);
            e->attrs = n + len;
        }
        p = n + len;
        char seen[16][32];
        int n_seen = 0;
        for (;;) {
            while (*p == ' ' || *p == '\n' || *p == '\t') p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
            size_t al = 0;
            while (is_name_char(p[al])) al++;
            if (al == 0 || p[al] != '=' || (p[al + 1] != '"' && p[al + 1] != '\''))
                return snprintf(d->error, sizeof d->error, "bad attribute at \"%.20s\"", p), -1;
            for (int i = 0; i < n_seen; i++)
                if (strlen(seen[i]) == al && strncmp(seen[i], p, al) == 0)
                    return snprintf(d->error, sizeof d->error, "duplicate attribute"), -1;
            if (n_seen < 16 && al < 32) {
                memcpy(seen[n_seen], p, al);
                seen[n_seen++][al] = 0;
            }
            char q = p[al + 1];
            p = xml_chars(p + al + 2, q, d);
            if (!p) return -1;
            if (*p != q)
                return snprintf(d->error, sizeof d->error, "'<' in an attribute value"), -1;
            p++;
        }
        if (e) e->attrs_len = (size_t)(p - e->attrs);
        if (*p == '/') {
            p += 2;
            continue;
        }
        p++;
        if (depth == XC_MAX_DEPTH) return snprintf(d->error, sizeof d->error, "too deep"), -1;
        stack[depth] = n;
        stack_len[depth++] = len;
        if (e && *p != '<') {
            e->text = p;
            const char *t = xml_chars(p, 0, d);
            if (!t) return -1;
            e->text_len = (size_t)(t - p);
        }
    }
    if (depth) return snprintf(d->error, sizeof d->error, "unclosed <%.*s>", (int)stack_len[depth - 1], stack[depth - 1]), -1;
    if (roots != 1) return snprintf(d->error, sizeof d->error, "no root element"), -1;
    return 0;
}

static int count_el(const xml_doc *d, const char *name)
{
    int n = 0;
    for (int i = 0; i < d->n; i++) n += strcmp(d->el[i].name, name) == 0;
    return n;
}

/* The value of attribute `attr` of element e, copied into out; 0 or -1. */
static int el_attr(const xml_el *e, const char *attr, char *out, size_t cap)
{
    char key[48];
    snprintf(key, sizeof key, " %s=\"", attr);
    const char *end = e->attrs + e->attrs_len;
    for (const char *p = e->attrs; p && p < end; p++) {
        if (strncmp(p, key, strlen(key)) != 0) continue;
        const char *v = p + strlen(key);
        const char *q = memchr(v, '"', (size_t)(end - v));
        if (!q || (size_t)(q - v) >= cap) return -1;
        memcpy(out, v, (size_t)(q - v));
        out[q - v] = 0;
        return 0;
    }
    return -1;
}

/* Points in a "x,y x,y ..." list. */
static int count_points(const char *pts)
{
    int n = 0;
    for (const char *p = pts; *p; p++) n += *p == ',';
    return n;
}

/* Is there a <text> whose content is exactly `s`? */
static int has_text(const xml_doc *d, const char *s)
{
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->el[i].name, "text") == 0 && d->el[i].text &&
            d->el[i].text_len == strlen(s) && strncmp(d->el[i].text, s, d->el[i].text_len) == 0)
            return 1;
    return 0;
}

/* Parse and fail the test with the checker's message when not well-formed. */
static xml_doc *parse_ok(const char *svg)
{
    assert_non_null(svg);
    xml_doc *d = malloc(sizeof *d);
    assert_non_null(d);
    int rc = xml_parse(svg, d);
    if (rc) fprintf(stderr, "not well-formed: %s\n%.2000s\n", d->error, svg);
    assert_int_equal(rc, 0);
    assert_string_equal(d->el[0].name, "svg");
    return d;
}

/* ---------------------------------------------------------------- the checker itself */

static void test_checker_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "<svg><g></svg>",           "<svg a=\"1\" a=\"2\"/>", "<svg>a & b</svg>",
        "<svg>x</svg><svg/>",       "<svg a=1/>",             "<svg>&nbsp;</svg>",
        "<svg a=\"<\"/>",           "<svg><text>1</svg>",     "text<svg/>",
    };
    xml_doc *d = malloc(sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (xml_parse(bad[i], d) == 0) fprintf(stderr, "accepted: %s\n", bad[i]);
        assert_int_not_equal(xml_parse(bad[i], d), 0);
    }
    assert_int_equal(xml_parse("<?xml version=\"1.0\"?>\n<svg a='1'><t>&amp;&#39;&#x41;</t></svg>\n", d), 0);
    free(d);
}

/* ---------------------------------------------------------------- ticks */

static void test_nice_ticks(void **state)
{
    (void)state;
    double t[32];
    int n = svg_nice_ticks(0.13, 0.97, 8, 0, t, 32);
    /* step 0.2: 0, 0.2, ..., 1.0 */
    assert_int_equal(n, 6);
    assert_true(t[0] <= 0.13 && t[n - 1] >= 0.97);
    for (int i = 1; i < n; i++) assert_true(fabs((t[i] - t[i - 1]) - 0.2) < 1e-12);
    assert_true(t[0] == 0.0);

    /* Every step is 1, 2 or 5 x 10^k, whatever the range. */
    const double ranges[][2] = {{3, 9917}, {-0.004, 0.0031}, {1e-9, 7e-9}, {-2e250, 3e250},
                                {12345.6, 12345.9}, {-7, -3}};
    for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
        n = svg_nice_ticks(ranges[r][0], ranges[r][1], 8, 0, t, 32);
        assert_true(n >= 2 && n <= 8);
        assert_true(t[0] <= ranges[r][0] && t[n - 1] >= ranges[r][1]);
        double step = t[1] - t[0];
        double m = step / pow(10, floor(log10(step) + 1e-9));
        assert_true(fabs(m - 1) < 1e-6 || fabs(m - 2) < 1e-6 || fabs(m - 5) < 1e-6);
    }
    /* Integer ticks (epochs) never step below 1. */
    n = svg_nice_ticks(1, 3, 8, 1, t, 32);
    assert_true(n >= 2);
    for (int i = 0; i < n; i++) assert_true(t[i] == floor(t[i]));
    /* Degenerate range: padded, still ticks around the value. */
    n = svg_nice_ticks(5, 5, 8, 0, t, 32);
    assert_true(n >= 2 && t[0] < 5 && t[n - 1] > 5);
    n = svg_nice_ticks(0, 0, 8, 0, t, 32);
    assert_true(n >= 2 && t[0] < 0 && t[n - 1] > 0);
    /* Bad ranges. */
    assert_int_equal(svg_nice_ticks(NAN, 1, 8, 0, t, 32), 0);
    assert_int_equal(svg_nice_ticks(2, 1, 8, 0, t, 32), 0);
    assert_int_equal(svg_nice_ticks(0, INFINITY, 8, 0, t, 32), 0);
}

/* ---------------------------------------------------------------- escaping */

static void test_escape(void **state)
{
    (void)state;
    char out[128];
    size_t n = svg_escape(out, sizeof out, "a<b>&\"c'");
    assert_string_equal(out, "a&lt;b&gt;&amp;&quot;c&#39;");
    assert_int_equal(n, strlen(out));
    /* Control bytes, invalid UTF-8 and a UTF-16 surrogate become '?'; valid UTF-8 stays. */
    svg_escape(out, sizeof out, "x\x01y\xff\xed\xa0\x80z\xc3\xa9");
    assert_string_equal(out, "x?y????z\xc3\xa9"); /* one ? per bad byte */
    /* Truncation reports the full length, like snprintf. */
    n = svg_escape(out, 4, "<<<<");
    assert_int_equal(n, 16);
    assert_int_equal(strlen(out), 3);
}

static void test_names_escaped_in_chart(void **state)
{
    (void)state;
    const double y[] = {1, 2, 3};
    svg_series s[] = {{.name = "a<b & \"c\"", .y = y, .n = 3, .color = -1, .dash = -1},
                      {.name = "</text><script>x</script>", .y = y, .n = 3, .color = -1, .dash = -1}};
    svg_chart c = {.title = "T & <U>", .x_label = "epoch", .y_label = "l\"oss", .fill_a = -1,
                   .fill_b = -1};
    char *svg = svg_line_chart(&c, s, 2, NULL);
    xml_doc *d = parse_ok(svg);
    assert_int_equal(count_el(d, "script"), 0);
    assert_true(has_text(d, "a&lt;b &amp; &quot;c&quot;"));
    assert_true(has_text(d, "T &amp; &lt;U&gt;"));
    assert_non_null(strstr(svg, "<title>T &amp; &lt;U&gt;</title>"));
    free(d);
    free(svg);
}

/* ---------------------------------------------------------------- line charts */

static void test_train_val_chart(void **state)
{
    (void)state;
    enum { N = 12 };
    double x[N], tr[N], va[N];
    for (int i = 0; i < N; i++) {
        x[i] = i + 1;
        tr[i] = 2.0 / (i + 1);
        va[i] = 2.2 / (i + 1) + 0.01 * i * i;
    }
    svg_series s[] = {{.name = "loss", .x = x, .y = tr, .n = N, .color = -1, .dash = -1},
                      {.name = "val_loss", .x = x, .y = va, .n = N, .color = -1, .dash = -1}};
    svg_chart c = {.title = "job", .x_label = "epoch", .y_label = "loss", .x_integer = 1,
                   .has_mark = 1, .mark_x = 6, .mark_label = "best epoch 6", .fill_a = 0,
                   .fill_b = 1};
    size_t len = 0;
    char *svg = svg_line_chart(&c, s, 2, &len);
    assert_int_equal(len, strlen(svg));
    xml_doc *d = parse_ok(svg);
    /* One polyline per series, one point per epoch. */
    int lines = 0;
    char pts[8192], attr[64];
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->el[i].name, "polyline")) continue;
        assert_int_equal(el_attr(&d->el[i], "points", pts, sizeof pts), 0);
        assert_int_equal(count_points(pts), N);
        lines++;
    }
    assert_int_equal(lines, 2);
    /* The series differ in colour and dash. */
    int first = -1, second = -1;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->el[i].name, "polyline") == 0) *(first < 0 ? &first : &second) = i;
    char c1[32], c2[32];
    /* colour is on the enclosing <g class="series">: the element before each polyline */
    assert_int_equal(el_attr(&d->el[first - 1], "stroke", c1, sizeof c1), 0);
    assert_int_equal(el_attr(&d->el[second - 1], "stroke", c2, sizeof c2), 0);
    assert_string_not_equal(c1, c2);
    assert_int_not_equal(el_attr(&d->el[first], "stroke-dasharray", attr, sizeof attr), 0);
    assert_int_equal(el_attr(&d->el[second], "stroke-dasharray", attr, sizeof attr), 0);
    /* The gap between the curves is shaded: one polygon over all 12 epochs, both ways. */
    assert_int_equal(count_el(d, "polygon"), 1);
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->el[i].name, "polygon") == 0) {
            assert_int_equal(el_attr(&d->el[i], "points", pts, sizeof pts), 0);
            assert_int_equal(count_points(pts), 2 * N);
        }
    /* Best epoch: the label, and a ring on both series at x = 6. */
    assert_true(has_text(d, "best epoch 6"));
    assert_non_null(strstr(svg, "class=\"mark\""));
    int rings = 0;
    for (int i = 0; i < d->n; i++)
        if (el_attr(&d->el[i], "class", attr, sizeof attr) == 0 && strcmp(attr, "mark-point") == 0)
            rings++;
    assert_int_equal(rings, 2);
    /* Legend names and axis titles. */
    assert_true(has_text(d, "loss"));
    assert_true(has_text(d, "val_loss"));
    assert_true(has_text(d, "epoch"));
    /* x ticks are whole epochs. */
    const char *xt = strstr(svg, "class=\"x-ticks\"");
    assert_non_null(xt);
    const char *xt_end = strstr(xt, "</g>");
    assert_non_null(strstr(xt, ">10</text>"));
    assert_true(strstr(xt, ">10</text>") < xt_end);
    for (const char *p = strstr(xt, "<text"); p && p < xt_end; p = strstr(p + 1, "<text")) {
        const char *v = strchr(p, '>') + 1;
        assert_true(strcspn(v, ".<") == strcspn(v, "<")); /* no decimal point */
    }
    free(d);
    free(svg);
}

static void test_nan_gaps(void **state)
{
    (void)state;
    const double y[] = {1, 2, NAN, 4, 5, 6, INFINITY, 8, NAN, 10};
    svg_series s = {.name = "gappy", .y = y, .n = 10, .color = -1, .dash = -1};
    svg_chart c = {.fill_a = -1, .fill_b = -1};
    char *svg = svg_line_chart(&c, &s, 1, NULL);
    xml_doc *d = parse_ok(svg);
    /* Runs: [1,2] [4,5,6] [8] [10]: two polylines; the lone points get dots. */
    assert_int_equal(count_el(d, "polyline"), 2);
    char pts[2048];
    int sizes[2], k = 0;
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->el[i].name, "polyline") == 0) {
            el_attr(&d->el[i], "points", pts, sizeof pts);
            sizes[k++] = count_points(pts);
        }
    assert_int_equal(sizes[0], 2);
    assert_int_equal(sizes[1], 3);
    assert_int_equal(count_el(d, "circle"), 7); /* 10 points, 3 missing: dots on all (n <= 60) */
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "inf"));
    free(d);
    free(svg);
}

static void test_single_point_and_flat(void **state)
{
    (void)state;
    const double one[] = {0.5};
    svg_series s = {.name = "loss", .y = one, .n = 1, .color = -1, .dash = -1};
    svg_chart c = {.x_integer = 1, .fill_a = -1, .fill_b = -1};
    char *svg = svg_line_chart(&c, &s, 1, NULL);
    xml_doc *d = parse_ok(svg);
    assert_int_equal(count_el(d, "polyline"), 0);
    assert_int_equal(count_el(d, "circle"), 1);
    assert_null(strstr(svg, "nan"));
    free(d);
    free(svg);

    const double flat[] = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
                           3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
                           3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
                           3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
    s.y = flat;
    s.n = (int)(sizeof flat / sizeof flat[0]);
    svg = svg_line_chart(&c, &s, 1, NULL);
    d = parse_ok(svg);
    assert_int_equal(count_el(d, "polyline"), 1);
    assert_int_equal(count_el(d, "circle"), 0); /* 70 points: no dots */
    assert_true(has_text(d, "3"));               /* the flat value is a tick inside the range */
    assert_null(strstr(svg, "nan"));
    free(d);
    free(svg);
}

static void test_extreme_values(void **state)
{
    (void)state;
    const double huge[] = {1e250, 3e250, -2e250, 1e308, 5e249};
    const double tiny[] = {1e-12, 3e-12, 2e-12, 4e-12, 2.5e-12};
    svg_series s[] = {{.name = "huge", .y = huge, .n = 5, .color = -1, .dash = -1}};
    svg_chart c = {.fill_a = -1, .fill_b = -1};
    char *svg = svg_line_chart(&c, s, 1, NULL);
    xml_doc *d = parse_ok(svg);
    /* 1e308 is beyond the renderer's range: a gap, not an axis up to 1e308. */
    assert_int_equal(count_el(d, "polyline"), 1);
    assert_null(strstr(svg, "nan"));
    assert_null(strstr(svg, "inf"));
    assert_null(strstr(svg, "e+308"));
    assert_true(has_text(d, "2e+250") || has_text(d, "1e+250"));
    free(d);
    free(svg);

    s[0].y = tiny;
    s[0].name = "tiny";
    svg = svg_line_chart(&c, s, 1, NULL);
    d = parse_ok(svg);
    assert_true(has_text(d, "1e-12") || has_text(d, "2e-12"));
    /* Every coordinate stays inside the canvas. */
    char pts[2048];
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->el[i].name, "polyline") == 0) {
            el_attr(&d->el[i], "points", pts, sizeof pts);
            for (char *p = pts; *p;) {
                double px = strtod(p, &p);
                assert_true(*p == ',');
                double py = strtod(p + 1, &p);
                assert_true(px >= 0 && px <= 720 && py >= 0 && py <= 420);
            }
        }
    free(d);
    free(svg);

    /* At the edge of the range: the air added above the top value must not take
     * the axis past it (that left the axis without ticks, read before its array). */
    const double edge[] = {0, 5e299, 1e300, -1e300};
    s[0].y = edge;
    s[0].n = 3;
    s[0].name = "edge";
    for (int both = 0; both < 2; both++, s[0].n = 4) {
        svg = svg_line_chart(&c, s, 1, NULL);
        d = parse_ok(svg);
        assert_int_equal(count_el(d, "polyline"), 1);
        assert_true(has_text(d, "1e+300"));
        assert_null(strstr(svg, "nan"));
        assert_null(strstr(svg, "inf"));
        free(d);
        free(svg);
    }
}

static void test_log_scale(void **state)
{
    (void)state;
    const double y[] = {100, 10, 1, 0.1, 0.01, 0, -1, 0.001};
    svg_series s = {.name = "loss", .y = y, .n = 8, .color = -1, .dash = -1};
    svg_chart c = {.log_y = 1, .fill_a = -1, .fill_b = -1};
    char *svg = svg_line_chart(&c, &s, 1, NULL);
    xml_doc *d = parse_ok(svg);
    /* Powers of ten as ticks; 0 and -1 cannot be drawn: a gap. */
    assert_true(has_text(d, "100") && has_text(d, "1") && has_text(d, "0.01") &&
                has_text(d, "0.001"));
    assert_int_equal(count_el(d, "polyline"), 1);
    assert_int_equal(count_el(d, "circle"), 6);
    free(d);
    free(svg);
}

static void test_empty_chart(void **state)
{
    (void)state;
    svg_chart c = {.title = "job_x: loss", .note = "no epochs yet", .x_integer = 1,
                   .x_fixed = 1, .x_lo = 1, .x_hi = 20, .fill_a = 0, .fill_b = 1,
                   .has_mark = 1, .mark_x = 3};
    const double none[] = {NAN};
    svg_series s[] = {{.name = "loss", .y = none, .n = 0, .color = -1, .dash = -1},
                      {.name = "val_loss", .y = none, .n = 0, .color = -1, .dash = -1}};
    char *svg = svg_line_chart(&c, s, 2, NULL);
    xml_doc *d = parse_ok(svg);
    assert_true(has_text(d, "no epochs yet"));
    assert_int_equal(count_el(d, "polyline"), 0);
    assert_true(has_text(d, "20")); /* the planned range is on the axis */
    free(d);
    free(svg);
    /* No series at all. */
    svg = svg_line_chart(&c, NULL, 0, NULL);
    d = parse_ok(svg);
    assert_true(has_text(d, "no epochs yet"));
    free(d);
    free(svg);
    /* Bad arguments. */
    assert_null(svg_line_chart(NULL, s, 2, NULL));
    assert_null(svg_line_chart(&c, NULL, 2, NULL));
    s[0].n = 3;
    s[0].y = NULL;
    assert_null(svg_line_chart(&c, s, 2, NULL));
}

static void test_many_series_distinct(void **state)
{
    (void)state;
    enum { S = 8, N = 5 };
    double y[S][N];
    svg_series s[S];
    char names[S][24];
    for (int k = 0; k < S; k++) {
        for (int i = 0; i < N; i++) y[k][i] = k + i * 0.1;
        snprintf(names[k], sizeof names[k], "trial %d", k);
        s[k] = (svg_series){.name = names[k], .y = y[k], .n = N, .color = -1, .dash = -1};
    }
    svg_chart c = {.fill_a = -1, .fill_b = -1};
    char *svg = svg_line_chart(&c, s, S, NULL);
    xml_doc *d = parse_ok(svg);
    /* No two series share both colour and dash. */
    char style[S][80];
    int k = 0;
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->el[i].name, "polyline")) continue;
        char col[32] = "", dash[32] = "";
        el_attr(&d->el[i - 1], "stroke", col, sizeof col);
        el_attr(&d->el[i], "stroke-dasharray", dash, sizeof dash);
        snprintf(style[k++], sizeof style[0], "%s/%s", col, dash);
    }
    assert_int_equal(k, S);
    for (int a = 0; a < S; a++)
        for (int b = a + 1; b < S; b++) assert_string_not_equal(style[a], style[b]);
    for (int j = 0; j < S; j++) assert_true(has_text(d, names[j]));
    free(d);
    free(svg);
}

/* More series than legend rows (overlaid sweep curves): the legend stays inside
 * the canvas and says how many it left out; every curve is still drawn. */
static void test_legend_overflow(void **state)
{
    (void)state;
    enum { S = 40 };
    const double y[] = {3, 2, 1};
    svg_series s[S];
    for (int k = 0; k < S; k++)
        s[k] = (svg_series){.name = "trial", .y = y, .n = 3, .color = -1, .dash = -1};
    svg_chart c = {.fill_a = -1, .fill_b = -1};
    char *svg = svg_line_chart(&c, s, S, NULL);
    xml_doc *d = parse_ok(svg);
    assert_int_equal(count_el(d, "polyline"), S);
    const char *more = strstr(svg, " more</text>");
    assert_non_null(more);
    while (more[-1] >= '0' && more[-1] <= '9') more--;
    assert_int_equal(more[-1], '+');
    int left_out = atoi(more);
    int rows = 0;
    for (int i = 0; i < d->n; i++) {
        char y1[32];
        if (strcmp(d->el[i].name, "line") || el_attr(&d->el[i], "stroke-width", y1, sizeof y1) ||
            strcmp(y1, "2.5") || el_attr(&d->el[i], "y1", y1, sizeof y1))
            continue;
        rows++;
        assert_true(atof(y1) < 420);
    }
    assert_int_equal(rows + left_out, S);
    assert_true(left_out > 0);
    free(d);
    free(svg);
}

/* ---------------------------------------------------------------- category charts */

static void test_category_chart(void **state)
{
    (void)state;
    const char *labels[] = {"l2=0", "l2=1e-4", "l2=1e-3", "l2=<1e-2>", "l2=0.1"};
    const double v[] = {0.42, 0.31, 0.28, NAN, 0.9};
    svg_categories cat = {.labels = labels, .values = v, .n = 5, .style = SVG_CAT_BARS,
                          .highlight = 2, .series_name = "best val_loss",
                          .highlight_label = "best trial"};
    svg_chart c = {.title = "sweep", .x_label = "kernel_regularizer.l2", .y_label = "val_loss"};
    char *svg = svg_category_chart(&c, &cat, NULL);
    xml_doc *d = parse_ok(svg);
    /* One bar per finite value, legend squares not counted (they are 12x12). */
    int bars = 0, accent = 0;
    char w[32], fill[32];
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->el[i].name, "rect") || el_attr(&d->el[i], "width", w, sizeof w)) continue;
        if (strcmp(w, "12") == 0 || strstr(w, "720")) continue;
        bars++;
        el_attr(&d->el[i], "fill", fill, sizeof fill);
        accent += strcmp(fill, "#D55E00") == 0;
    }
    assert_int_equal(bars, 4);
    assert_int_equal(accent, 1);
    assert_true(has_text(d, "l2=&lt;1e-2&gt;"));
    assert_true(has_text(d, "best trial"));
    assert_true(has_text(d, "0")); /* bars start at zero */
    free(d);
    free(svg);

    /* Points on a log axis; many long labels get rotated. */
    enum { N = 30 };
    const char *many[N];
    double mv[N];
    char buf[N][40];
    for (int i = 0; i < N; i++) {
        snprintf(buf[i], sizeof buf[i], "trial-%02d-with-a-long-name", i);
        many[i] = buf[i];
        mv[i] = pow(10, -3 + i * 0.1);
    }
    svg_categories cat2 = {.labels = many, .values = mv, .n = N, .style = SVG_CAT_POINTS,
                           .highlight = -1};
    c.log_y = 1;
    svg = svg_category_chart(&c, &cat2, NULL);
    d = parse_ok(svg);
    assert_int_equal(count_el(d, "circle"), N);
    assert_non_null(strstr(svg, "rotate(-40"));
    assert_int_equal(count_el(d, "rect"), 1); /* the background only: no bars, no legend */
    free(d);
    free(svg);

    /* Nothing finite: the note. */
    const double nan1[] = {NAN};
    svg_categories cat3 = {.values = nan1, .n = 1, .highlight = 0};
    svg_chart c3 = {.note = "no finished trials"};
    svg = svg_category_chart(&c3, &cat3, NULL);
    d = parse_ok(svg);
    assert_true(has_text(d, "no finished trials"));
    free(d);
    free(svg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_checker_rejects),
        cmocka_unit_test(test_nice_ticks),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_names_escaped_in_chart),
        cmocka_unit_test(test_train_val_chart),
        cmocka_unit_test(test_nan_gaps),
        cmocka_unit_test(test_single_point_and_flat),
        cmocka_unit_test(test_extreme_values),
        cmocka_unit_test(test_log_scale),
        cmocka_unit_test(test_empty_chart),
        cmocka_unit_test(test_many_series_distinct),
        cmocka_unit_test(test_legend_overflow),
        cmocka_unit_test(test_category_chart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
