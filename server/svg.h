/*
 * svg.h — small chart renderer: numbers and labels in, SVG 1.1 text out.
 *
 * What it does: line charts of several named series over a numeric x (epochs, a
 * swept parameter), and category charts (one bar or point per named category,
 * e.g. the trials of a sweep). Each chart has a title, axes with "nice" ticks
 * (steps of 1, 2 or 5 times a power of ten; powers of ten on a log axis), tick
 * labels, axis titles and a legend; line charts can shade the gap between two
 * series and mark one x (the best epoch) with a vertical line. Series get
 * distinct colours and dash patterns (colour-blind safe palette; the dash keeps
 * them apart in grey scale too).
 *
 * Data rules: a NaN or infinite y (or x) is a missing point: the line breaks
 * there (a gap) and resumes at the next finite point. On a log axis y <= 0 is
 * missing too. Values beyond +-1e300 are treated as missing (their spans would
 * overflow). A chart with no finite point is drawn with empty axes and
 * `note` in the middle. One point, or a flat series, gets a padded range.
 *
 * What it does not: read files, know HTTP or the store, or lay out long text
 * well: legend names longer than 40 characters are shortened with "...".
 * All text (titles, names, labels) is XML-escaped; bytes that are not valid
 * UTF-8 or not allowed in XML become '?'.
 *
 * Ownership and threads: inputs are borrowed for the call; the result is
 * malloc'ed NUL-terminated text that the caller frees with free(). No global
 * state: every function is thread-safe.
 */
#ifndef FITD_SVG_H
#define FITD_SVG_H

#include <stddef.h>

/* One line of a line chart. */
typedef struct svg_series {
    const char *name; /* legend text (NULL = "series N") */
    const double *x;  /* n values; NULL = 1, 2, ..., n */
    const double *y;  /* n values; non-finite = missing */
    int n;
    int color;        /* palette index; < 0 = the series' position */
    int dash;         /* 0 solid, 1 dashed, 2 dotted, 3 dash-dot; < 0 = position */
    int markers;      /* draw a dot at each finite point (auto for <= 60 points) */
    int no_line;      /* dots only (a scatter): implies markers */
} svg_series;

/* The frame shared by both kinds of chart. Zero-initialise, then set what you
 * need; zero fields take the defaults in brackets. */
typedef struct svg_chart {
    const char *title;   /* [none] */
    const char *x_label; /* axis titles [none] */
    const char *y_label;
    int width, height;   /* pixels [720 x 420] */
    int log_y;           /* logarithmic y axis */
    int x_integer;       /* x ticks on whole numbers only (epochs) */
    int x_fixed;         /* use x_lo..x_hi as the x range (e.g. 1..planned epochs) */
    double x_lo, x_hi;
    const char *note;    /* shown in the plot area when no point is finite */
    /* Line charts only. */
    int has_mark;        /* draw a vertical line at mark_x */
    double mark_x;
    const char *mark_label; /* text beside the line ["best"] */
    int fill_a, fill_b;  /* shade between series fill_a and fill_b where both are
                            finite at the same index; used when fill_a != fill_b
                            and both exist (the series must share their x) */
} svg_chart;

/* A line chart of n_series series (n_series may be 0: empty axes and the note).
 * Returns malloc'ed SVG text (free()), its length in *len (may be NULL), or NULL
 * on out of memory or invalid arguments (negative counts, NULL arrays with n > 0). */
char *svg_line_chart(const svg_chart *c, const svg_series *series, int n_series, size_t *len);

/* How a category chart draws its values. */
typedef enum svg_cat_style {
    SVG_CAT_BARS = 0, /* bars from the axis base (points on a log axis) */
    SVG_CAT_POINTS    /* a dot per category */
} svg_cat_style;

/* One value per category: labels[i] under the x axis (NULL = "i+1"), values[i]
 * (non-finite = missing: the slot stays empty). `highlight` (or -1) is drawn in
 * the accent colour and named in the legend as `highlight_label` ["best"];
 * `series_name` names the values in the legend [no legend]. */
typedef struct svg_categories {
    const char *const *labels;
    const double *values;
    int n;
    svg_cat_style style;
    int highlight;
    const char *series_name;
    const char *highlight_label;
} svg_categories;

/* A category chart (x is categorical; c->x_* range fields and the mark are
 * ignored). Same return contract as svg_line_chart. */
char *svg_category_chart(const svg_chart *c, const svg_categories *cat, size_t *len);

/* Nice ticks covering [lo, hi]: steps of 1, 2 or 5 x 10^k, at most max_ticks
 * (>= 2) of them, the first <= lo and the last >= hi. `integer` forces a step
 * >= 1. Writes up to cap values to ticks and returns the count, or 0 for a bad
 * range (non-finite, lo > hi). lo == hi is padded first. */
int svg_nice_ticks(double lo, double hi, int max_ticks, int integer, double *ticks, int cap);

/* Append `s` XML-escaped to out (size cap, always NUL-terminated); returns the
 * escaped length (which may exceed cap - 1 when truncated, like snprintf). */
size_t svg_escape(char *out, size_t cap, const char *s);

#endif
