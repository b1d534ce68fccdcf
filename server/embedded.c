/* embedded.c — lookup in the table that server/embed.sh generates. */
#include <string.h>

#include "embedded.h"

const srv_embedded_file *srv_embedded_find(const char *path)
{
    for (const srv_embedded_file *f = srv_embedded; f->path; f++)
        if (strcmp(f->path, path) == 0) return f;
    return NULL;
}
