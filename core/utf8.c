/* utf8.c — UTF-8 validation for text fitd reads and later echoes in JSON (tensor
 * names in safetensors headers, client bytes in problem documents): JSON must be
 * UTF-8, and Jansson refuses anything else. */
#include "nn.h"

size_t nn_utf8_char_len(const unsigned char *s, size_t avail)
{
    if (avail == 0) return 0;
    unsigned c = s[0];
    size_t n = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3
             : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (n <= 1 || n > avail) return n <= 1 ? n : 0;
    unsigned cp = c & (0x7Fu >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    /* No overlong forms, surrogates or code points past U+10FFFF (RFC 3629). */
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}
