/*
 * buf.h — a growable text buffer for building replies (JSON, CSV, SVG, SSE).
 *
 * What it does: append bytes, C strings, printf-formatted text and JSON string
 * literals to a heap buffer that doubles as it grows and is always NUL-terminated
 * once anything was appended. What it does not: parse, or report each failure:
 * an allocation failure sets `failed`, later appends do nothing, and the caller
 * checks `failed` once at the end (out of memory is a status, never a crash).
 *
 * Ownership: `data` is malloc'ed and belongs to whoever holds the buf; release it
 * with buf_free (or hand `data` on, e.g. to http_reply_bytes, and forget it).
 * A zeroed buf (`buf b = {0};`) is empty and valid. No globals: thread-safe for
 * distinct buffers.
 */
#ifndef FITD_BUF_H
#define FITD_BUF_H

#include <stddef.h>

typedef struct buf {
    char *data;  /* NUL-terminated after the first append; NULL while empty */
    size_t len;  /* bytes appended, without the NUL */
    size_t cap;  /* bytes allocated */
    int failed;  /* an allocation failed: the content is incomplete */
} buf;

/* Append a string literal (its length is known at compile time). */
#define BUF_LIT(b, lit) buf_add((b), (lit), sizeof(lit) - 1)

/* Append n bytes of s (which may hold NULs). */
void buf_add(buf *b, const char *s, size_t n);

/* Append the C string s. */
void buf_str(buf *b, const char *s);

/* Append printf-formatted text. */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void buf_printf(buf *b, const char *fmt, ...);

/* Append s as a JSON string literal, quotes included: ", \ and control
 * characters escaped as Jansson's compact output does (\b \f \n \r \t, else
 * \u00XX); other bytes, UTF-8 included, are passed through. s == NULL appends
 * null. */
void buf_json_str(buf *b, const char *s);

/* Append v as Jansson writes a real at JSON_REAL_PRECISION(9), the precision of
 * every JSON reply (each float32 round-trips; ".0" keeps an integral value a
 * real), or null when v is not finite. For replies of millions of numbers
 * (weights, predictions): text costs ~13 bytes a number, a json_t tree ~80. */
void buf_json_real(buf *b, double v);

/* Append the n floats at v as a JSON array of buf_json_real numbers. */
void buf_json_floats(buf *b, const float *v, size_t n);

/* Free the content and reset b to empty. Accepts NULL. */
void buf_free(buf *b);

#endif
