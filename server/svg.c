/* svg.c — line and category charts as SVG 1.1 text (see svg.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svg.h"

#include "buf.h"
#include "nn.h"

#define SVG_W_DEFAULT 720
#define SVG_H_DEFAULT 420
#define SVG_MAX_TICKS 8
#define SVG_TICK_CAP 32
#define SVG_NAME_MAX_CP 40   /* legend names are shortened beyond this */
#define SVG_LABEL_MAX_CP 24  /* category labels likewise */
#define SVG_HUGE 1e300       /* beyond: treated as missing */
#define SVG_CHAR_W 6.6       /* estimated advance of one character at 12 px */
#define SVG_AUTO_MARKERS 60  /* series with at most this many points get dots */

/* Okabe-Ito: distinguishable with the common colour-vision deficiencies. Yellow
 * is left out: it vanishes on white. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                      "#E69F00", "#56B4E9", "#000000"};
#define N_COLORS ((int)(sizeof palette / sizeof palette[0]))
static const char *const dashes[] = {"", "7 4", "2 3", "9 3 2 3"};
#define N_DASHES ((int)(sizeof dashes / sizeof dashes[0]))
#define ACCENT "#D55E00"
#define BASE_COLOR "#0072B2"

/* ---------------------------------------------------------------- escaping */

/* Length of the character XML 1.0 allows at s (1..4), or 0: valid UTF-8
 * (nn_utf8_char_len) but neither a C0 control other than tab and line breaks nor
 * U+FFFE / U+FFFF. s is NUL-terminated. */
static int xml_char_len(const unsigned char *s)
{
    size_t n = nn_utf8_char_len(s, strnlen((const char *)s, 4));
    if (n == 1 && s[0] < 0x20 && s[0] != '\t' && s[0] != '\n' && s[0] != '\r') return 0;
    if (n == 3 && s[0] == 0xEF && s[1] == 0xBF && s[2] >= 0xBE) return 0;
    return (int)n;
}

typedef void (*put_fn)(void *user, const char *s, size_t n);

/* Emit s escaped, at most max_cp characters (then "..."; max_cp <= 0: all).
 * Returns the characters emitted (for width estimates). */
static int escape_to(put_fn put, void *user, const char *s, int max_cp)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    int cp = 0;
    while (*p) {
        if (max_cp > 0 && cp == max_cp) {
            put(user, "...", 3);
            return cp + 3;
        }
        int n = xml_char_len(p);
        switch (n ? *p : 0) {
        case '&': put(user, "&amp;", 5); break;
        case '<': put(user, "&lt;", 4); break;
        case '>': put(user, "&gt;", 4); break;
        case '"': put(user, "&quot;", 6); break;
        case '\'': put(user, "&#39;", 5); break;
        case '\n':
        case '\r':
        case '\t': put(user, " ", 1); break;
        case 0: put(user, "?", 1); break;
        default: put(user, (const char *)p, (size_t)n);
        }
        p += n ? n : 1;
        cp++;
    }
    return cp;
}

static void add_cb(void *user, const char *s, size_t n)
{
    buf_add(user, s, n);
}

static int put_text(buf *b, const char *s, int max_cp)
{
    return escape_to(add_cb, b, s, max_cp);
}

typedef struct fixed_out {
    char *out;
    size_t cap, len;
} fixed_out;

static void fixed_put(void *user, const char *s, size_t n)
{
    fixed_out *f = user;
    for (size_t i = 0; i < n; i++, f->len++)
        if (f->len + 1 < f->cap) f->out[f->len] = s[i];
}

size_t svg_escape(char *out, size_t cap, const char *s)
{
    fixed_out f = {out, cap, 0};
    escape_to(fixed_put, &f, s, 0);
    if (cap) out[f.len < cap ? f.len : cap - 1] = 0;
    return f.len;
}

static void count_put(void *user, const char *s, size_t n)
{
    (void)user;
    (void)s;
    (void)n;
}

/* Characters of s as escape_to counts them (for layout). */
static int text_width_cp(const char *s, int max_cp)
{
    return escape_to(count_put, NULL, s, max_cp);
}

/* ---------------------------------------------------------------- ticks */

static int usable(double v)
{
    return isfinite(v) && fabs(v) <= SVG_HUGE;
}

/* Widen a degenerate range (one value, or a span lost in rounding). */
static void pad_range(double *lo, double *hi, int integer)
{
    double mag = fmax(fabs(*lo), fabs(*hi));
    if (*hi - *lo > 1e-12 * mag && *hi > *lo) return;
    double mid = *lo / 2 + *hi / 2;
    double pad = integer ? 0.5 : (mid != 0 ? fabs(mid) * 0.1 : 1.0);
    *lo = mid - pad;
    *hi = mid + pad;
}

int svg_nice_ticks(double lo, double hi, int max_ticks, int integer, double *ticks, int cap)
{
    if (!usable(lo) || !usable(hi) || lo > hi || max_ticks < 2 || cap < 1) return 0;
    pad_range(&lo, &hi, integer);
    double raw = (hi / 2 - lo / 2) * 2 / (max_ticks - 1);
    double mag = pow(10, floor(log10(raw)));
    static const double mult[] = {1, 2, 5, 10, 20};
    double step = mag * 10;
    for (size_t i = 0; i < sizeof mult / sizeof mult[0]; i++) {
        double s = mult[i] * mag;
        if (integer && s < 1) continue;
        if (ceil(hi / s) - floor(lo / s) + 1 <= max_ticks) {
            step = s;
            break;
        }
    }
    if (integer && step < 1) step = 1;
    double k0 = floor(lo / step), k1 = ceil(hi / step);
    int n = 0;
    for (double k = k0; k <= k1 && n < cap && n <= max_ticks + 1; k++) {
        double v = k * step;
        if (fabs(v) < step * 1e-9) v = 0; /* no "-0" or 1e-17 */
        ticks[n++] = v;
    }
    return n;
}

/* Ticks at powers of ten covering [lo, hi] (both > 0); with fewer than three
 * decades, 2x and 5x ticks too. */
static int log_ticks(double lo, double hi, double *ticks, int cap)
{
    int e0 = (int)floor(log10(lo)), e1 = (int)ceil(log10(hi));
    if (e1 == e0) e1++;
    int decades = e1 - e0;
    int every = (decades + SVG_MAX_TICKS - 1) / SVG_MAX_TICKS;
    int n = 0;
    for (int e = e0; e <= e1 && n < cap; e++) {
        if ((e - e0) % every) continue;
        double p10 = pow(10, e);
        ticks[n++] = p10;
        if (decades < 3 && e < e1) {
            if (n < cap) ticks[n++] = 2 * p10;
            if (n < cap) ticks[n++] = 5 * p10;
        }
    }
    return n;
}

/* A tick label with just enough digits to tell ticks `step` apart. */
static void tick_label(char *out, size_t cap, double v, double step, int log_axis)
{
    if (v == 0) {
        snprintf(out, cap, "0");
        return;
    }
    if (log_axis) {
        snprintf(out, cap, "%g", v);
        return;
    }
    int e_v = (int)floor(log10(fabs(v))), e_s = (int)floor(log10(step) + 1e-9);
    int digits = e_v - e_s + 1;
    if (digits < 1) digits = 1;
    if (digits > 15) digits = 15;
    /* %g switches to exponents at exp >= precision: keep plain numbers below 1e6. */
    if (e_v >= 0 && e_v < 6 && digits < e_v + 1) digits = e_v + 1;
    snprintf(out, cap, "%.*g", digits, v);
}

/* ---------------------------------------------------------------- axes */

typedef struct axis {
    double lo, hi; /* data range shown (log10 of it on a log axis) */
    int log;
    double ticks[SVG_TICK_CAP];
    int n_ticks;
    double step;   /* linear tick step, for labels */
} axis;

typedef struct frame {
    double left, top, right, bottom; /* the plot area in pixels */
    int w, h;
    axis x, y;
} frame;

static double ax_val(const axis *a, double v)
{
    return a->log ? log10(v) : v;
}

static double px_x(const frame *f, double v)
{
    double t = (ax_val(&f->x, v) - f->x.lo) / (f->x.hi - f->x.lo);
    return f->left + t * (f->right - f->left);
}

static double px_y(const frame *f, double v)
{
    double t = (ax_val(&f->y, v) - f->y.lo) / (f->y.hi - f->y.lo);
    return f->bottom - t * (f->bottom - f->top);
}

/* The y axis from the data range [lo, hi] (have = 0: no data). Linear axes
 * extend to the outer nice ticks. */
static void y_axis_setup(axis *a, int log_axis, int have, double lo, double hi)
{
    a->log = log_axis;
    if (log_axis) {
        if (!have) lo = 1, hi = 10;
        a->n_ticks = log_ticks(lo, hi, a->ticks, SVG_TICK_CAP);
        a->lo = floor(log10(lo));
        a->hi = ceil(log10(hi));
        if (a->hi == a->lo) a->hi += 1;
        return;
    }
    if (!have) lo = 0, hi = 1;
    a->n_ticks = svg_nice_ticks(lo, hi, SVG_MAX_TICKS, 0, a->ticks, SVG_TICK_CAP);
    a->step = a->n_ticks > 1 ? a->ticks[1] - a->ticks[0] : 1;
    a->lo = a->ticks[0];
    a->hi = a->ticks[a->n_ticks - 1];
}

/* The x axis spans exactly [lo, hi] (padded when degenerate); ticks inside it. */
static void x_axis_setup(axis *a, int integer, int have, double lo, double hi)
{
    double t[SVG_TICK_CAP];
    if (!have) lo = integer ? 1 : 0, hi = integer ? 10 : 1;
    pad_range(&lo, &hi, integer);
    if (integer && lo < hi) { /* half an epoch of air at each end */
        lo -= 0.25;
        hi += 0.25;
    }
    a->log = 0;
    a->lo = lo;
    a->hi = hi;
    int n = svg_nice_ticks(lo, hi, SVG_MAX_TICKS, integer, t, SVG_TICK_CAP);
    a->step = n > 1 ? t[1] - t[0] : 1;
    a->n_ticks = 0;
    double eps = (hi - lo) * 1e-9;
    for (int i = 0; i < n; i++)
        if (t[i] >= lo - eps && t[i] <= hi + eps) a->ticks[a->n_ticks++] = t[i];
}

static void svg_open(buf *b, const svg_chart *c, int w, int h)
{
    buf_printf(b,
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
              "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" "
              "height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, "
              "sans-serif\" font-size=\"12\">\n",
              w, h, w, h);
    if (c->title) {
        BUF_LIT(b, "<title>");
        put_text(b, c->title, 0);
        BUF_LIT(b, "</title>\n");
    }
    buf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", w, h);
    if (c->title) {
        buf_printf(b, "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" "
                     "font-weight=\"bold\" fill=\"#222222\">", w / 2.0);
        put_text(b, c->title, 90);
        BUF_LIT(b, "</text>\n");
    }
}

/* Grid, axis lines, y ticks and labels, axis titles. x ticks are drawn by the
 * caller (numeric or categorical). */
static void draw_frame(buf *b, const svg_chart *c, const frame *f)
{
    char lab[64];
    BUF_LIT(b, "<g class=\"grid\" stroke=\"#e6e6e6\" stroke-width=\"1\">\n");
    for (int i = 0; i < f->y.n_ticks; i++) {
        double y = px_y(f, f->y.ticks[i]);
        buf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", f->left, y,
                  f->right, y);
    }
    BUF_LIT(b, "</g>\n");
    buf_printf(b,
              "<g class=\"axes\" stroke=\"#444444\" stroke-width=\"1\">\n"
              "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n"
              "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n</g>\n",
              f->left, f->bottom, f->right, f->bottom, f->left, f->top, f->left, f->bottom);
    BUF_LIT(b, "<g class=\"y-ticks\" font-size=\"11\" fill=\"#333333\" text-anchor=\"end\">\n");
    for (int i = 0; i < f->y.n_ticks; i++) {
        double y = px_y(f, f->y.ticks[i]);
        tick_label(lab, sizeof lab, f->y.ticks[i], f->y.step, f->y.log);
        buf_printf(b,
                  "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#444444\"/>"
                  "<text x=\"%.2f\" y=\"%.2f\">%s</text>\n",
                  f->left - 4, y, f->left, y, f->left - 7, y + 4, lab);
    }
    BUF_LIT(b, "</g>\n");
    if (c->x_label) {
        buf_printf(b, "<text class=\"x-title\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
                     "fill=\"#222222\">", (f->left + f->right) / 2, (double)f->h - 10);
        put_text(b, c->x_label, 60);
        BUF_LIT(b, "</text>\n");
    }
    if (c->y_label) {
        double cy = (f->top + f->bottom) / 2;
        buf_printf(b, "<text class=\"y-title\" x=\"16\" y=\"%.2f\" text-anchor=\"middle\" "
                     "fill=\"#222222\" transform=\"rotate(-90 16 %.2f)\">", cy, cy);
        put_text(b, c->y_label, 40);
        BUF_LIT(b, "</text>\n");
    }
}

static void draw_note(buf *b, const frame *f, const char *note)
{
    if (!note) return;
    buf_printf(b, "<text class=\"note\" x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" "
                 "font-size=\"14\" fill=\"#777777\">", (f->left + f->right) / 2,
              (f->top + f->bottom) / 2);
    put_text(b, note, 80);
    BUF_LIT(b, "</text>\n");
}

/* Margins from the texts; `legend_cp` = widest legend name in characters (0 =
 * no legend), `bottom_extra` for rotated category labels. */
static void frame_layout(frame *f, const svg_chart *c, int legend_cp, double bottom_extra)
{
    f->w = c->width > 0 ? c->width : SVG_W_DEFAULT;
    f->h = c->height > 0 ? c->height : SVG_H_DEFAULT;
    double legend_w = legend_cp ? 44 + SVG_CHAR_W * legend_cp : 0;
    if (legend_w > f->w * 0.4) legend_w = f->w * 0.4;
    f->left = c->y_label ? 78 : 60;
    f->top = c->title ? 44 : 18;
    f->right = f->w - 18 - legend_w;
    f->bottom = f->h - (c->x_label ? 48 : 30) - bottom_extra;
    if (f->right < f->left + 40) f->right = f->left + 40;
    if (f->bottom < f->top + 40) f->bottom = f->top + 40;
}

/* One legend row: a line sample (dash, colour) or a filled square (dash < 0). */
static void legend_row(buf *b, const frame *f, int row, const char *color, int dash,
                       const char *name)
{
    double x = f->right + 14, y = f->top + 8 + row * 20;
    if (dash >= 0)
        buf_printf(b, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                     "stroke-width=\"2.5\"%s%s%s/>",
                  x, y, x + 24, y, color, dashes[dash][0] ? " stroke-dasharray=\"" : "",
                  dashes[dash], dashes[dash][0] ? "\"" : "");
    else
        buf_printf(b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"12\" height=\"12\" fill=\"%s\"/>",
                  x + 6, y - 6, color);
    buf_printf(b, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#222222\">", x + 30, y + 4);
    put_text(b, name, SVG_NAME_MAX_CP);
    BUF_LIT(b, "</text>\n");
}

static char *finish(buf *b, size_t *len)
{
    BUF_LIT(b, "</svg>\n");
    if (b->failed) {
        free(b->data);
        return NULL;
    }
    if (len) *len = b->len;
    return b->data;
}

/* ---------------------------------------------------------------- line charts */

static double sx(const svg_series *s, int i)
{
    return s->x ? s->x[i] : (double)(i + 1);
}

/* Is point i of s drawable on this frame? */
static int point_ok(const frame *f, const svg_series *s, int i)
{
    double x = sx(s, i), y = s->y[i];
    if (!usable(x) || !usable(y)) return 0;
    if (f->y.log && y <= 0) return 0;
    double eps = (f->x.hi - f->x.lo) * 1e-9;
    return x >= f->x.lo - eps && x <= f->x.hi + eps;
}

static const char *series_color(const svg_series *s, int i)
{
    int k = s->color >= 0 ? s->color : i;
    return palette[k % N_COLORS];
}

static int series_dash(const svg_series *s, int i)
{
    return (s->dash >= 0 ? s->dash : i) % N_DASHES;
}

/* Shade between a and b over each run of indices where both are drawable. */
static void draw_fill(buf *b, const frame *f, const svg_series *a, const svg_series *bs,
                      const char *color)
{
    int n = a->n < bs->n ? a->n : bs->n;
    for (int i = 0; i < n;) {
        int j = i;
        while (j < n && point_ok(f, a, j) && point_ok(f, bs, j) && sx(a, j) == sx(bs, j)) j++;
        if (j - i >= 2) {
            buf_printf(b, "<polygon class=\"gap\" fill=\"%s\" fill-opacity=\"0.13\" "
                         "stroke=\"none\" points=\"", color);
            for (int k = i; k < j; k++)
                buf_printf(b, "%s%.2f,%.2f", k > i ? " " : "", px_x(f, sx(a, k)), px_y(f, a->y[k]));
            for (int k = j - 1; k >= i; k--)
                buf_printf(b, " %.2f,%.2f", px_x(f, sx(bs, k)), px_y(f, bs->y[k]));
            BUF_LIT(b, "\"/>\n");
        }
        i = j > i ? j : i + 1;
    }
}

static void draw_series(buf *b, const frame *f, const svg_series *s, int idx, const svg_chart *c)
{
    const char *color = series_color(s, idx);
    int dash = series_dash(s, idx);
    buf_printf(b, "<g class=\"series\" stroke=\"%s\" fill=\"%s\">\n", color, color);
    if (!s->no_line) {
        /* One polyline per run of drawable points: missing points leave gaps. */
        for (int i = 0; i < s->n;) {
            while (i < s->n && !point_ok(f, s, i)) i++;
            int j = i;
            while (j < s->n && point_ok(f, s, j)) j++;
            if (j - i >= 2) {
                buf_printf(b, "<polyline fill=\"none\" stroke-width=\"2\" "
                             "stroke-linejoin=\"round\"%s%s%s points=\"",
                          dashes[dash][0] ? " stroke-dasharray=\"" : "", dashes[dash],
                          dashes[dash][0] ? "\"" : "");
                for (int k = i; k < j; k++)
                    buf_printf(b, "%s%.2f,%.2f", k > i ? " " : "", px_x(f, sx(s, k)),
                              px_y(f, s->y[k]));
                BUF_LIT(b, "\"/>\n");
            }
            i = j;
        }
    }
    int markers = s->markers || s->no_line || s->n <= SVG_AUTO_MARKERS;
    for (int i = 0; i < s->n; i++) {
        if (!point_ok(f, s, i)) continue;
        /* A lone point (neighbours missing) always gets a dot: it has no line. */
        int lone = (i == 0 || !point_ok(f, s, i - 1)) && (i + 1 >= s->n || !point_ok(f, s, i + 1));
        if (!markers && !lone) continue;
        buf_printf(b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%s\" stroke=\"none\"/>\n",
                  px_x(f, sx(s, i)), px_y(f, s->y[i]), s->no_line ? "4" : "2.6");
    }
    if (c->has_mark)
        for (int i = 0; i < s->n; i++)
            if (point_ok(f, s, i) && sx(s, i) == c->mark_x)
                buf_printf(b, "<circle class=\"mark-point\" cx=\"%.2f\" cy=\"%.2f\" r=\"6\" "
                             "fill=\"none\" stroke-width=\"2\"/>\n",
                          px_x(f, sx(s, i)), px_y(f, s->y[i]));
    BUF_LIT(b, "</g>\n");
}

static void draw_mark(buf *b, const frame *f, const svg_chart *c)
{
    if (!c->has_mark || !usable(c->mark_x)) return;
    if (c->mark_x < f->x.lo || c->mark_x > f->x.hi) return;
    double x = px_x(f, c->mark_x);
    int flip = x > f->left + 0.75 * (f->right - f->left);
    buf_printf(b, "<g class=\"mark\">\n<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" "
                 "stroke=\"#555555\" stroke-width=\"1.2\" stroke-dasharray=\"4 3\"/>\n"
                 "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"%s\" font-size=\"11\" "
                 "fill=\"#333333\">",
              x, f->top, x, f->bottom, flip ? x - 5 : x + 5, f->top + 12, flip ? "end" : "start");
    put_text(b, c->mark_label ? c->mark_label : "best", 40);
    BUF_LIT(b, "</text>\n</g>\n");
}

static void draw_x_ticks(buf *b, const frame *f)
{
    char lab[64];
    BUF_LIT(b, "<g class=\"x-ticks\" font-size=\"11\" fill=\"#333333\" text-anchor=\"middle\">\n");
    for (int i = 0; i < f->x.n_ticks; i++) {
        double x = px_x(f, f->x.ticks[i]);
        tick_label(lab, sizeof lab, f->x.ticks[i], f->x.step, 0);
        buf_printf(b,
                  "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#444444\"/>"
                  "<text x=\"%.2f\" y=\"%.2f\">%s</text>\n",
                  x, f->bottom, x, f->bottom + 4, x, f->bottom + 17, lab);
    }
    BUF_LIT(b, "</g>\n");
}

char *svg_line_chart(const svg_chart *c, const svg_series *series, int n_series, size_t *len)
{
    buf b = {0};
    frame f;
    int legend_cp = 0, have_x = 0, have_y = 0;
    double xlo = 0, xhi = 0, ylo = 0, yhi = 0;
    if (!c || n_series < 0 || (n_series > 0 && !series)) return NULL;
    for (int s = 0; s < n_series; s++) {
        if (series[s].n < 0 || (series[s].n > 0 && !series[s].y)) return NULL;
        char fallback[32];
        snprintf(fallback, sizeof fallback, "series %d", s + 1);
        int w = text_width_cp(series[s].name ? series[s].name : fallback, SVG_NAME_MAX_CP);
        if (w > legend_cp) legend_cp = w;
    }
    frame_layout(&f, c, legend_cp, 0);

    /* Ranges: x first (fixed or from the data), then y over the points inside it. */
    int x_fixed = c->x_fixed && usable(c->x_lo) && usable(c->x_hi) && c->x_lo <= c->x_hi;
    for (int s = 0; s < n_series && !x_fixed; s++)
        for (int i = 0; i < series[s].n; i++) {
            double x = sx(&series[s], i), y = series[s].y[i];
            if (!usable(x) || !usable(y) || (c->log_y && y <= 0)) continue;
            xlo = have_x ? fmin(xlo, x) : x;
            xhi = have_x ? fmax(xhi, x) : x;
            have_x = 1;
        }
    if (x_fixed) {
        xlo = c->x_lo;
        xhi = c->x_hi;
    }
    x_axis_setup(&f.x, c->x_integer, x_fixed || have_x, xlo, xhi);
    f.y.log = c->log_y;
    for (int s = 0; s < n_series; s++)
        for (int i = 0; i < series[s].n; i++) {
            if (!point_ok(&f, &series[s], i)) continue;
            double y = series[s].y[i];
            ylo = have_y ? fmin(ylo, y) : y;
            yhi = have_y ? fmax(yhi, y) : y;
            have_y = 1;
        }
    if (have_y && !c->log_y && yhi > ylo) {
        /* A little air so extreme points do not sit on the frame (but a
         * non-negative series, a loss, keeps its axis at >= 0). */
        double air = (yhi - ylo) * 0.03;
        ylo = ylo >= 0 && ylo - air < 0 ? 0 : fmax(ylo - air, -SVG_HUGE);
        yhi = fmin(yhi + air, SVG_HUGE); /* past it there are no ticks */
    }
    y_axis_setup(&f.y, c->log_y, have_y, ylo, yhi);

    svg_open(&b, c, f.w, f.h);
    draw_frame(&b, c, &f);
    draw_x_ticks(&b, &f);
    if (c->fill_a != c->fill_b && c->fill_a >= 0 && c->fill_b >= 0 && c->fill_a < n_series &&
        c->fill_b < n_series)
        draw_fill(&b, &f, &series[c->fill_a], &series[c->fill_b],
                  series_color(&series[c->fill_b], c->fill_b));
    draw_mark(&b, &f, c);
    for (int s = 0; s < n_series; s++) draw_series(&b, &f, &series[s], s, c);
    if (n_series > 0) {
        /* As many rows as fit beside the plot; the rest are summed up. */
        int rows = (int)((f.bottom - f.top) / 20);
        int shown = n_series <= rows ? n_series : rows - 1;
        BUF_LIT(&b, "<g class=\"legend\" font-size=\"12\">\n");
        for (int s = 0; s < shown; s++) {
            char fallback[32];
            snprintf(fallback, sizeof fallback, "series %d", s + 1);
            legend_row(&b, &f, s, series_color(&series[s], s), series_dash(&series[s], s),
                       series[s].name ? series[s].name : fallback);
        }
        if (shown < n_series)
            buf_printf(&b, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#555555\">+%d more</text>\n",
                      f.right + 14, f.top + 12 + (shown > 0 ? shown : 0) * 20, n_series - shown);
        BUF_LIT(&b, "</g>\n");
    }
    if (!have_y) draw_note(&b, &f, c->note);
    return finish(&b, len);
}

/* ---------------------------------------------------------------- category charts */

char *svg_category_chart(const svg_chart *c, const svg_categories *cat, size_t *len)
{
    buf b = {0};
    frame f;
    char num[32];
    if (!c || !cat || cat->n < 0 || (cat->n > 0 && !cat->values)) return NULL;
    int has_hl = cat->highlight >= 0 && cat->highlight < cat->n;
    const char *hl_label = cat->highlight_label ? cat->highlight_label : "best";
    int legend_cp = cat->series_name ? text_width_cp(cat->series_name, SVG_NAME_MAX_CP) : 0;
    if (has_hl && (cat->series_name || legend_cp == 0)) {
        int w = text_width_cp(hl_label, SVG_NAME_MAX_CP);
        if (w > legend_cp) legend_cp = w;
    }
    int label_cp = 0;
    for (int i = 0; i < cat->n; i++) {
        const char *l = cat->labels ? cat->labels[i] : NULL;
        snprintf(num, sizeof num, "%d", i + 1);
        int w = text_width_cp(l ? l : num, SVG_LABEL_MAX_CP);
        if (w > label_cp) label_cp = w;
    }
    /* Rotate the labels when they would not fit side by side. */
    frame_layout(&f, c, legend_cp, 0);
    double slot = cat->n ? (f.right - f.left) / cat->n : f.right - f.left;
    int rotate = label_cp * SVG_CHAR_W + 6 > slot;
    if (rotate) frame_layout(&f, c, legend_cp, 0.6 * SVG_CHAR_W * label_cp);
    slot = cat->n ? (f.right - f.left) / cat->n : f.right - f.left;
    /* Every k-th label when even rotated ones would overlap. */
    int every = rotate && slot < 13 ? (int)ceil(13 / slot) : 1;

    int have = 0;
    double lo = 0, hi = 0;
    for (int i = 0; i < cat->n; i++) {
        double v = cat->values[i];
        if (!usable(v) || (c->log_y && v <= 0)) continue;
        lo = have ? fmin(lo, v) : v;
        hi = have ? fmax(hi, v) : v;
        have = 1;
    }
    int bars = cat->style == SVG_CAT_BARS && !c->log_y;
    if (have && bars) { /* bars grow from zero */
        lo = fmin(lo, 0);
        hi = fmax(hi, 0);
    }
    y_axis_setup(&f.y, c->log_y, have, lo, hi);
    f.x.lo = 0;
    f.x.hi = cat->n > 0 ? cat->n : 1;

    svg_open(&b, c, f.w, f.h);
    draw_frame(&b, c, &f);
    BUF_LIT(&b, "<g class=\"x-ticks\" font-size=\"11\" fill=\"#333333\">\n");
    for (int i = 0; i < cat->n; i++) {
        if (i % every) continue;
        double x = f.left + (i + 0.5) * slot;
        const char *l = cat->labels ? cat->labels[i] : NULL;
        snprintf(num, sizeof num, "%d", i + 1);
        if (rotate)
            buf_printf(&b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\" "
                          "transform=\"rotate(-40 %.2f %.2f)\">", x + 3, f.bottom + 14, x + 3,
                      f.bottom + 14);
        else
            buf_printf(&b, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">", x,
                      f.bottom + 17);
        put_text(&b, l ? l : num, SVG_LABEL_MAX_CP);
        BUF_LIT(&b, "</text>\n");
    }
    BUF_LIT(&b, "</g>\n<g class=\"values\" stroke=\"none\">\n");
    double base = f.y.lo <= 0 && f.y.hi >= 0 ? px_y(&f, 0) : f.bottom;
    double bar_w = fmin(slot * 0.6, 60);
    for (int i = 0; i < cat->n; i++) {
        double v = cat->values[i];
        if (!usable(v) || (c->log_y && v <= 0)) continue;
        const char *color = has_hl && i == cat->highlight ? ACCENT : BASE_COLOR;
        double x = f.left + (i + 0.5) * slot, y = px_y(&f, v);
        if (bars)
            buf_printf(&b, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" "
                          "fill=\"%s\"/>\n", x - bar_w / 2, fmin(y, base), bar_w,
                      fabs(base - y), color);
        else
            buf_printf(&b, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"5\" fill=\"%s\"/>\n", x, y,
                      color);
    }
    BUF_LIT(&b, "</g>\n");
    if (cat->series_name || has_hl) {
        int row = 0;
        BUF_LIT(&b, "<g class=\"legend\" font-size=\"12\">\n");
        if (cat->series_name) legend_row(&b, &f, row++, BASE_COLOR, -1, cat->series_name);
        if (has_hl) legend_row(&b, &f, row, ACCENT, -1, hl_label);
        BUF_LIT(&b, "</g>\n");
    }
    if (!have) draw_note(&b, &f, c->note);
    return finish(&b, len);
}
