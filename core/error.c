/* error.c — nn_error: the first error recorded wins. */
#include <stdarg.h>
#include <stdio.h>

#include "nn.h"

nn_status nn_error_set(nn_error *err, nn_status code, const char *fmt, ...)
{
    if (!err || err->code != NN_OK) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void nn_error_clear(nn_error *err)
{
    if (!err) return;
    err->code = NN_OK;
    err->message[0] = 0;
}

const char *nn_status_name(nn_status code)
{
    switch (code) {
    case NN_OK: return "ok";
    case NN_ERR_NOMEM: return "out of memory";
    case NN_ERR_INVALID: return "invalid argument";
    case NN_ERR_PARSE: return "parse error";
    case NN_ERR_LIMIT: return "limit exceeded";
    case NN_ERR_MISMATCH: return "mismatch";
    case NN_ERR_NUMERIC: return "numeric error";
    case NN_ERR_CANCELLED: return "cancelled";
    case NN_ERR_IO: return "i/o error";
    case NN_ERR_CALLBACK: return "callback error";
    }
    return "unknown error";
}
