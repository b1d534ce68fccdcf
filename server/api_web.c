/*
 * api_web.c — the dashboard: GET / (server/web/index.html) and GET /ui/{file}
 * (the page's scripts, styles and images), all compiled into the binary by
 * server/embed.sh, so fitd serves its own UI with no files on disk.
 *
 * These routes need no token (auth.c guards /v1/ only): the page holds no data;
 * it calls the /v1 API from the browser with the user's bearer token.
 *
 * Every answer carries a Content-Security-Policy that allows scripts, styles and
 * connections from this origin only (no inline script, no remote origin), images
 * from this origin and blob: URLs (the server-rendered SVG charts are shown
 * through <img src="blob:...">, which renders them without running anything
 * they might contain). Assets are not fingerprinted, so they are revalidated on
 * every use (Cache-Control: no-cache) against a strong ETag of their bytes;
 * a matching If-None-Match answers 304 without a body.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "embedded.h"
#include "digest.h"
#include "http.h"

#define WEB_PREFIX "server/web/"

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                          "img-src 'self' blob: data:; connect-src 'self'; "
                          "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* The media type for a file name's extension, or NULL for a kind not served. */
static const char *web_media_type(const char *name)
{
    static const struct {
        const char *ext;
        const char *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(name, '.');
    if (!dot) return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0) return types[i].type;
    return NULL;
}

/* 1 when `name` is a plain file name: 1-64 characters of A-Z a-z 0-9 . _ -, not
 * starting with a dot. Lookups go to the embedded table only, so this is not what
 * keeps a path out of the file system; it keeps odd names out of the lookup. */
static int web_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64 || name[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Answer with the embedded file `name` (under server/web/), or 404. */
static void web_serve(http_req *req, const char *name)
{
    char path[96], etag[DIGEST_ETAG];
    const char *type = web_name_ok(name) ? web_media_type(name) : NULL;
    const srv_embedded_file *f = NULL;
    if (type) {
        snprintf(path, sizeof path, WEB_PREFIX "%s", name);
        f = srv_embedded_find(path);
    }
    if (!f) {
        http_reply_problem(req, 404, "no dashboard file named '%s'", name);
        return;
    }
    digest_etag(f->data, f->len, etag);
    if (http_reply_header(req, "ETag", etag) != 0 ||
        http_reply_header(req, "Cache-Control", "no-cache") != 0 ||
        http_reply_header(req, "Content-Security-Policy", csp) != 0 ||
        http_reply_header(req, "X-Content-Type-Options", "nosniff") != 0 ||
        http_reply_header(req, "Referrer-Policy", "no-referrer") != 0) {
        http_reply_nomem(req);
        return;
    }
    if (http_req_etag_matches(req, etag)) {
        http_reply_empty(req, 304);
        return;
    }
    http_reply_static(req, 200, type, f->data, f->len);
}

static void handle_index(http_req *req)
{
    web_serve(req, "index.html");
}

static void handle_asset(http_req *req)
{
    web_serve(req, http_req_param(req, "file"));
}

int api_web_register(http_server *srv)
{
    const http_route routes[] = {
        {.method = HTTP_GET, .pattern = "/", .handler = handle_index, .any_query = 1},
        {.method = HTTP_GET, .pattern = "/ui/{file}", .handler = handle_asset, .any_query = 1},
    };
    return http_route_add(srv, routes, sizeof routes / sizeof routes[0]);
}
