/* fuzz_multipart.h — the multipart/form-data dataset upload (POST /v1/datasets).
 *
 * Why over a socket: the upload path is MHD's post processor feeding
 * api_datasets.c's part callback (x and y into IDX parsers, name into a fixed
 * buffer), then the finish step pairing the arrays and storing the dataset. MHD
 * creates a post processor only for a live connection (it reads the boundary from
 * the connection's headers), and the part callback is static, so the smallest
 * unit that contains the real part handling is the route itself. The target sends
 * each input as the body of a real request to an in-process server
 * (fuzz_server.c), with Content-Type multipart/form-data; boundary=FUZZ.
 * Coverage feedback comes from fitd's own code (MHD is not instrumented).
 *
 * Properties: every reply is a 201 or a 4xx (never a 5xx, a dropped connection or
 * a hang); a 201's dataset is deleted again (204), so the database stays small. */
#ifndef FITD_FUZZ_MULTIPART_H
#define FITD_FUZZ_MULTIPART_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "fuzz_server.h"

int fuzz_multipart(const uint8_t *data, size_t size)
{
    static const char fmt[] = "POST /v1/datasets HTTP/1.1\r\nHost: fuzz\r\n"
                              "Content-Type: multipart/form-data; boundary=FUZZ\r\n"
                              "Content-Length: %zu\r\nConnection: close\r\n\r\n";
    char head[256], *body = NULL;
    int n = snprintf(head, sizeof head, fmt, size);
    char *req = malloc((size_t)n + size);
    if (!req) return 0;
    memcpy(req, head, (size_t)n);
    if (size) memcpy(req + n, data, size);
    int status = fuzz_http(req, (size_t)n + size, &body);
    free(req);
    int bad = 0;
    if (status < 200 || status >= 500 || (status >= 200 && status < 400 && status != 201)) {
        fprintf(stderr, "fuzz_multipart: status %d: %s\n", status, body ? body : "");
        bad = 1;
    }
    if (status == 201) {
        json_t *doc = json_loads(body, 0, NULL);
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (!id) {
            fprintf(stderr, "fuzz_multipart: 201 without an id: %s\n", body);
            bad = 1;
        } else {
            char del[256];
            int m = snprintf(del, sizeof del,
                             "DELETE /v1/datasets/%.64s HTTP/1.1\r\nHost: fuzz\r\n"
                             "Connection: close\r\n\r\n",
                             id);
            int st = fuzz_http(del, (size_t)m, NULL);
            if (st != 204) {
                fprintf(stderr, "fuzz_multipart: deleting %s: status %d\n", id, st);
                bad = 1;
            }
        }
        json_decref(doc);
    }
    free(body);
    return bad ? -1 : 0;
}

FUZZ_ENTRY(fuzz_multipart)

#endif
