#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "support.h"

void support_assert_close(const float *a, const float *b, size_t n, double atol, double rtol,
                          const char *label, const char *file, int line)
{
    size_t worst = 0, n_bad = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        double excess = isnan(diff) ? INFINITY : diff - (atol + rtol * fabs((double)b[i]));
        if (excess > 0) n_bad++;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (n_bad) {
        print_error("%s: %zu of %zu values differ; worst at [%zu]: %.9g vs %.9g (diff %.3g)\n",
                       label, n_bad, n, worst, (double)a[worst], (double)b[worst],
                       fabs((double)a[worst] - (double)b[worst]));
        _fail(file, line);
    }
}

const char *fixture_path(const char *name)
{
    static char path[4096];
    const char *dir = getenv("FITD_FIXTURES");
    snprintf(path, sizeof path, "%s/%s", dir ? dir : "tests/fixtures", name);
    return path;
}

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f) return NULL;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536 * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) { free(buf); fclose(f); return NULL; }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) { free(buf); return NULL; }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

/* ---------------------------------------------------------------- integration tests */

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <sqlite3.h>
#include <zlib.h>

#include "store.h"

void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Sanitized binaries start and stop slower. */
double it_slow(void)
{
    const char *f = getenv("FITD_TEST_SLOW");
    if (f && atof(f) >= 1) return atof(f);
    return getenv("FITD_TEST_SANITIZED") ? 4.0 : 1.0;
}

const char *it_fitd_bin(void)
{
    const char *b = getenv("FITD_BIN");
    return b && *b ? b : "build/fitd";
}

void it_dump_log(const it_server *s)
{
    char *log = read_file(s->log_path, NULL);
    fprintf(stderr, "---- fitd log (%s) ----\n%s---- end of log ----\n", s->log_path,
            log ? log : "(unreadable)\n");
    free(log);
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

int it_start(it_server *s, const char *const *extra_args)
{
    char port_path[700], listen_arg[] = "127.0.0.1:0";
    const char *args[64];
    int n = 0;
    if (!s->dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(s->dir, sizeof s->dir, "%s/fitd-it-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(s->dir)) {
            s->dir[0] = 0;
            return -1;
        }
    }
    snprintf(s->db, sizeof s->db, "%s/fitd.db", s->dir);
    snprintf(s->log_path, sizeof s->log_path, "%s/fitd.log", s->dir);
    snprintf(port_path, sizeof port_path, "%s/port", s->dir);
    unlink(port_path);
    s->port = 0;

    args[n++] = it_fitd_bin();
    args[n++] = "serve";
    args[n++] = "--listen";
    args[n++] = listen_arg;
    args[n++] = "--db";
    args[n++] = s->db;
    args[n++] = "--port-file";
    args[n++] = port_path;
    for (int i = 0; extra_args && extra_args[i] && n < 62; i++) args[n++] = extra_args[i];
    args[n] = NULL;

    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
            close(fd);
        }
        execv(args[0], (char *const *)(uintptr_t)args);
        _exit(127);
    }
    s->pid = pid;

    /* Wait for the port file, then for /healthz. */
    long deadline_ms = (long)(15000 * it_slow());
    for (long waited = 0; waited < deadline_ms; waited += 20) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            fprintf(stderr, "fitd exited during start-up (status %d)\n", status);
            s->pid = 0;
            it_dump_log(s);
            return -1;
        }
        if (!s->port) {
            char *txt = read_file(port_path, NULL);
            if (txt) {
                s->port = (unsigned)strtoul(txt, NULL, 10);
                free(txt);
            }
        }
        if (s->port) {
            it_resp r;
            if (it_get(s, "/healthz", &r) == 0 && r.status == 200) {
                it_resp_free(&r);
                return 0;
            }
            it_resp_free(&r);
        }
        sleep_ms(20);
    }
    fprintf(stderr, "fitd did not become healthy\n");
    it_dump_log(s);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* When FITD_ACCESS_LOG names a file, append "METHOD ROUTE STATUS" for every
 * access-log line of fitd's log (ROUTE "-" when no route pattern matched), so that
 * tests/run.sh can check the statuses seen against api-docs/openapi.yaml. Called
 * just before the folder is removed, when the log holds every run in it (restarts
 * append to the same log). Lines that are not JSON (a sanitizer report) are
 * skipped. */
static void harvest_access_log(const it_server *s)
{
    const char *out_path = getenv("FITD_ACCESS_LOG");
    if (!out_path || !*out_path) return;
    char *log = read_file(s->log_path, NULL);
    if (!log) return;
    FILE *out = fopen(out_path, "a");
    if (!out) {
        fprintf(stderr, "cannot append to FITD_ACCESS_LOG %s: %s\n", out_path, strerror(errno));
        free(log);
        return;
    }
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        const char *msg = json_string_value(json_object_get(o, "msg"));
        const char *method = json_string_value(json_object_get(o, "method"));
        const char *route = json_string_value(json_object_get(o, "route"));
        json_t *status = json_object_get(o, "status");
        if (msg && strcmp(msg, "request") == 0 && method && json_is_integer(status))
            fprintf(out, "%s %s %lld\n", method, route ? route : "-",
                    (long long)json_integer_value(status));
        json_decref(o);
    }
    if (fclose(out) != 0) fprintf(stderr, "cannot write FITD_ACCESS_LOG %s\n", out_path);
    free(log);
}

int it_stop(it_server *s)
{
    int rc = -1;
    if (s->pid > 0) {
        int status = 0;
        kill(s->pid, SIGTERM);
        long deadline_ms = (long)(30000 * it_slow());
        long waited = 0;
        for (; waited < deadline_ms; waited += 10) {
            pid_t w = waitpid(s->pid, &status, WNOHANG);
            if (w == s->pid) break;
            sleep_ms(10);
        }
        if (waited >= deadline_ms) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            rc = -1;
        } else {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        }
        if (rc != 0) it_dump_log(s);
        s->pid = 0;
    }
    if (!s->keep_dir && s->dir[0]) {
        harvest_access_log(s);
        remove_dir(s->dir);
        s->dir[0] = 0;
    }
    return rc;
}

void it_resp_free(it_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

typedef struct it_buf {
    char *data;
    size_t len, cap;
} it_buf;

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *user)
{
    it_buf *b = user;
    size_t n = size * nmemb;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1) cap *= 2;
        char *nb = realloc(b->data, cap);
        if (!nb) return 0;
        b->data = nb;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = 0;
    return n;
}

static void copy_header_value(char *dst, size_t size, const char *line, size_t n, size_t name_len)
{
    const char *v = line + name_len;
    size_t vn = n - name_len;
    while (vn && (*v == ' ' || *v == '\t')) v++, vn--;
    while (vn && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' ')) vn--;
    if (vn >= size) vn = size - 1;
    memcpy(dst, v, vn);
    dst[vn] = 0;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *user)
{
    it_resp *r = user;
    size_t n = size * nmemb;
    static const struct {
        const char *name;
        size_t off, size;
    } want[] = {
        {"content-type:", offsetof(it_resp, content_type), sizeof(((it_resp *)0)->content_type)},
        {"location:", offsetof(it_resp, location), sizeof(((it_resp *)0)->location)},
        {"allow:", offsetof(it_resp, allow), sizeof(((it_resp *)0)->allow)},
        {"x-request-id:", offsetof(it_resp, request_id), sizeof(((it_resp *)0)->request_id)},
        {"retry-after:", offsetof(it_resp, retry_after), sizeof(((it_resp *)0)->retry_after)},
        {"etag:", offsetof(it_resp, etag), sizeof(((it_resp *)0)->etag)},
        {"www-authenticate:", offsetof(it_resp, www_authenticate),
         sizeof(((it_resp *)0)->www_authenticate)},
    };
    /* A new status line (after 100 Continue) starts a new header block. */
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) ((char *)r + want[i].off)[0] = 0;
        r->headers[0] = 0;
        r->headers_len = 0;
        return n;
    }
    if (r->headers_len + n < sizeof r->headers) {
        memcpy(r->headers + r->headers_len, line, n);
        r->headers_len += n;
        r->headers[r->headers_len] = 0;
    }
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        size_t k = strlen(want[i].name);
        if (n >= k && strncasecmp(line, want[i].name, k) == 0)
            copy_header_value((char *)r + want[i].off, want[i].size, line, n, k);
    }
    return n;
}

typedef struct it_fill {
    const char *pattern;
    size_t pattern_len, total, sent;
} it_fill;

static size_t on_read(char *buf, size_t size, size_t nitems, void *user)
{
    it_fill *f = user;
    size_t want = size * nitems;
    size_t left = f->total - f->sent;
    if (want > left) want = left;
    for (size_t i = 0; i < want; i++) buf[i] = f->pattern[(f->sent + i) % f->pattern_len];
    f->sent += want;
    return want;
}

void it_record_response(const char *method, const char *path, long status,
                        const char *content_type, const void *body, size_t len, json_t *extra)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    const char *out_path = getenv("FITD_RESPONSE_LOG");
    if (!out_path || !*out_path || status <= 0) {
        json_decref(extra);
        return;
    }
    json_t *parsed = NULL;
    int body_error = 0;
    int has_body = strcmp(method, "HEAD") != 0 && status != 204 && status != 304;
    if (has_body && strstr(content_type, "json") && len <= ((size_t)1 << 20)) {
        parsed = json_loadb(body, len, JSON_DECODE_ANY, NULL);
        body_error = !parsed;
    }
    size_t plen = strcspn(path, "?");
    json_t *o = json_pack("{s:s, s:s%, s:I, s:s, s:o*, s:b}", "method", method, "path", path,
                          plen, "status", (json_int_t)status, "type", content_type, "body",
                          parsed, "body_error", body_error);
    if (o && extra) json_object_update(o, extra);
    json_decref(extra);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!line) { /* a path that is not UTF-8, or out of memory: said, not hidden */
        fprintf(stderr, "FITD_RESPONSE_LOG: cannot record the response to %s %.200s\n", method,
                path);
        return;
    }
    pthread_mutex_lock(&mu);
    FILE *f = fopen(out_path, "a");
    int ok = f && fprintf(f, "%s\n", line) >= 0;
    if (f && fclose(f) != 0) ok = 0;
    if (!ok) fprintf(stderr, "FITD_RESPONSE_LOG: cannot append to %s\n", out_path);
    pthread_mutex_unlock(&mu);
    free(line);
}

static int do_request(const it_server *s, const char *method, const char *path,
                      const char *const *headers, const void *body, size_t len, it_fill *fill,
                      it_resp *out)
{
    char url[1024];
    it_buf b = {0};
    struct curl_slist *hl = NULL;
    int rc = -1;
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    snprintf(url, sizeof url, "%s://127.0.0.1:%u%s", s->tls ? "https" : "http", s->port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (s->tls) curl_easy_setopt(c, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(120L * it_slow()));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    int own_auth = 0, own_expect = 0;
    for (int i = 0; headers && headers[i]; i++) {
        hl = curl_slist_append(hl, headers[i]);
        own_auth |= strncasecmp(headers[i], "Authorization:", 14) == 0;
        own_expect |= strncasecmp(headers[i], "Expect:", 7) == 0;
    }
    if (s->token[0] && !own_auth) {
        char auth[300];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", s->token);
        hl = curl_slist_append(hl, auth);
    }
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (fill) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, fill);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    /* No "Expect: 100-continue" unless a test asks for it: replies come at once.
     * A test that does ask waits for the server's word before sending a body. */
    if (!own_expect) hl = curl_slist_append(hl, "Expect:");
    else curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    CURLcode cc = curl_easy_perform(c);
    if (cc == CURLE_OK || cc == CURLE_SEND_ERROR) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
        if (out->status > 0) rc = 0;
    }
    if (rc != 0) fprintf(stderr, "%s %s: %s\n", method, path, curl_easy_strerror(cc));
    out->body = b.data ? b.data : calloc(1, 1);
    out->len = b.len;
    if (rc == 0)
        it_record_response(method, path, out->status, out->content_type, out->body, out->len,
                           NULL);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc;
}

const char *it_header(const it_resp *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    out[0] = 0;
    for (const char *p = r->headers; *p;) {
        const char *eol = strstr(p, "\r\n");
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > n && strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *v = p + n + 1;
            while (*v == ' ') v++;
            size_t vlen = len - (size_t)(v - p);
            if (vlen >= cap) vlen = cap - 1;
            memcpy(out, v, vlen);
            out[vlen] = 0;
            return out;
        }
        p += len + (eol ? 2 : 0);
    }
    return out;
}

it_server it_as(const it_server *s, const char *token)
{
    it_server c = *s;
    snprintf(c.token, sizeof c.token, "%s", token ? token : "");
    return c;
}

int it_request(const it_server *s, const char *method, const char *path,
               const char *const *headers, const void *body, size_t len, it_resp *out)
{
    return do_request(s, method, path, headers, body, len, NULL, out);
}

int it_request_chunked(const it_server *s, const char *method, const char *path,
                       const char *const *headers, const void *fill, size_t fill_len,
                       size_t total, it_resp *out, size_t *sent)
{
    it_fill f = {fill, fill_len, total, 0};
    int rc = do_request(s, method, path, headers, NULL, 0, &f, out);
    if (sent) *sent = f.sent;
    return rc;
}

int it_get(const it_server *s, const char *path, it_resp *out)
{
    return it_request(s, "GET", path, NULL, NULL, 0, out);
}

int it_delete(const it_server *s, const char *path, it_resp *out)
{
    return it_request(s, "DELETE", path, NULL, NULL, 0, out);
}

int it_post_json(const it_server *s, const char *path, const char *json, it_resp *out)
{
    const char *h[] = {"Content-Type: application/json", NULL};
    return it_request(s, "POST", path, h, json, strlen(json), out);
}

json_t *it_json(const it_resp *r)
{
    json_error_t e;
    if (!r->body) return NULL;
    return json_loadb(r->body, r->len, 0, &e);
}

json_t *support_assert_problem(const it_resp *r, long status, const char *file, int line)
{
    if (r->status != status) {
        print_error("expected status %ld, got %ld: %s\n", status, r->status,
                       r->body ? r->body : "");
        _fail(file, line);
    }
    if (strcmp(r->content_type, "application/problem+json") != 0) {
        print_error("expected application/problem+json, got '%s'\n", r->content_type);
        _fail(file, line);
    }
    json_t *doc = it_json(r);
    json_t *st = doc ? json_object_get(doc, "status") : NULL;
    if (!doc || !json_is_integer(st) || json_integer_value(st) != status ||
        !json_is_string(json_object_get(doc, "title")) ||
        !json_is_string(json_object_get(doc, "type"))) {
        print_error("not a problem document for %ld: %s\n", status, r->body ? r->body : "");
        json_decref(doc);
        _fail(file, line);
    }
    return doc;
}

int it_raw_send_close(const it_server *s, const void *data, size_t len, long hold_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)s->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        const char *p = data;
        size_t left = len;
        while (left) {
            ssize_t w = send(fd, p, left, MSG_NOSIGNAL);
            if (w <= 0) break;
            p += w;
            left -= (size_t)w;
        }
        rc = left ? -1 : 0;
        sleep_ms(hold_ms);
    }
    close(fd);
    return rc;
}

int it_run_fitd(const char *const *args, char **output)
{
    const char *argv[64];
    int n = 0, fds[2];
    argv[n++] = it_fitd_bin();
    for (int i = 0; args && args[i] && n < 63; i++) argv[n++] = args[i];
    argv[n] = NULL;
    *output = NULL;
    if (pipe(fds) != 0) return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    close(fds[1]);
    it_buf b = {0};
    char chunk[4096];
    ssize_t got;
    while ((got = read(fds[0], chunk, sizeof chunk)) > 0) on_write(chunk, 1, (size_t)got, &b);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    *output = b.data ? b.data : calloc(1, 1);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

char *it_multipart(const it_part *parts, int n, size_t *len, const char **content_type)
{
    static const char boundary[] = "fitd-test-boundary-7d1c0e";
    it_buf b = {0};
    char head[512];
    for (int i = 0; i < n; i++) {
        int k;
        if (parts[i].filename)
            k = snprintf(head, sizeof head,
                         "--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                         "Content-Type: application/octet-stream\r\n\r\n",
                         boundary, parts[i].name, parts[i].filename);
        else
            k = snprintf(head, sizeof head,
                         "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n", boundary,
                         parts[i].name);
        on_write(head, 1, (size_t)k, &b);
        on_write((char *)(uintptr_t)parts[i].data, 1, parts[i].len, &b);
        on_write("\r\n", 1, 2, &b);
    }
    int k = snprintf(head, sizeof head, "--%s--\r\n", boundary);
    on_write(head, 1, (size_t)k, &b);
    *len = b.len;
    *content_type = "Content-Type: multipart/form-data; boundary=fitd-test-boundary-7d1c0e";
    return b.data;
}

void *it_gzip(const void *data, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, (uLong)len) + 64;
    unsigned char *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)data;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    *out_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

int it_write_file(const char *path, const void *data, size_t len, int gzip)
{
    size_t n = len;
    void *gz = NULL;
    if (gzip) {
        gz = it_gzip(data, len, &n);
        if (!gz) return -1;
        data = gz;
    }
    FILE *f = fopen(path, "wb");
    int rc = -1;
    if (f) {
        rc = fwrite(data, 1, n, f) == n ? 0 : -1;
        if (fclose(f) != 0) rc = -1;
    }
    free(gz);
    return rc;
}

const char *const keras_fixtures[N_KERAS_FIXTURES] = {
    "keras_3.0-3.3.json", "keras_3.4-3.12.json", "keras_3.13.json",
    "tf_keras_2.12.json", "tf_keras_2.13.json", "tf_keras_2.x_input_shape.json",
    "keras_2.0_bare_list.json",
};

json_t *keras_fixture(const char *name)
{
    char rel[128];
    snprintf(rel, sizeof rel, "keras/%s", name);
    json_error_t err;
    json_t *v = json_load_file(fixture_path(rel), JSON_REJECT_DUPLICATES, &err);
    if (!v) print_message("%s: %s (line %d)\n", rel, err.text, err.line);
    assert_non_null(v);
    return v;
}

void support_expect_status(const it_resp *r, long want, const char *file, int line)
{
    if (r->status != want) {
        print_error("want %ld, got %ld: %.800s\n", want, r->status, r->body ? r->body : "");
        _fail(file, line);
    }
}

json_t *support_body_json(const it_resp *r, const char *file, int line)
{
    json_t *v = it_json(r);
    if (!v) {
        print_error("not JSON (status %ld): %.300s\n", r->status, r->body ? r->body : "");
        _fail(file, line);
    }
    return v;
}

json_t *it_get_json(const it_server *s, const char *path)
{
    it_resp r;
    assert_int_equal(it_get(s, path, &r), 0);
    expect_status(&r, 200);
    json_t *o = body_json(&r);
    it_resp_free(&r);
    return o;
}

int it_db_exec(const char *db_path, const char *fmt, ...)
{
    char sql[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof sql);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) fail_msg("%s: %s", sql, err);
    int changes = sqlite3_changes(db);
    sqlite3_close(db);
    return changes;
}

json_t *it_job_get(const it_server *s, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    return it_get_json(s, path);
}

json_t *it_job_metrics(const it_server *s, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", id);
    json_t *a = it_get_json(s, path);
    assert_true(json_is_array(a));
    return a;
}

void it_tokens_dir(char *dir, size_t dir_len, char *tokens, size_t tokens_len, const char *text)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, dir_len, "%s/fitd-tokens-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(tokens, tokens_len, "%s/tokens", dir);
    assert_int_equal(it_write_file(tokens, text, strlen(text), 0), 0);
}

int it_post_id(const it_server *s, const char *path, const char *ctype, const char *body,
               size_t len, long want, char *id, size_t id_len)
{
    char ct[160];
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    const char *h[] = {ct, NULL};
    it_resp r;
    if (it_request(s, "POST", path, h, body, len, &r) != 0) {
        fprintf(stderr, "POST %s: no response\n", path);
        return -1;
    }
    json_t *o = r.status == want ? it_json(&r) : NULL;
    const char *got = json_string_value(json_object_get(o, "id"));
    if (got) snprintf(id, id_len, "%s", got);
    else fprintf(stderr, "POST %s: %ld %.300s\n", path, r.status, r.body ? r.body : "");
    json_decref(o);
    it_resp_free(&r);
    return got ? 0 : -1;
}

int it_upload_csv(const it_server *s, const char *path, const char *csv, size_t len, char *id,
                  size_t id_len)
{
    return it_post_id(s, path, "text/csv", csv, len, 201, id, id_len);
}

int it_upload_digits(const it_server *s, char *id, size_t id_len)
{
    size_t len = 0;
    char *csv = read_file(fixture_path("digits.csv"), &len);
    if (!csv) {
        fprintf(stderr, "cannot read %s\n", fixture_path("digits.csv"));
        return -1;
    }
    int rc = it_upload_csv(s, "/v1/datasets?name=digits&label=label", csv, len, id, id_len);
    free(csv);
    return rc;
}

void it_restore_checkpoint(const char *db, const char *job_id, const char *ds_id, it_restored *out)
{
    char err[512];
    void *ck = NULL;
    size_t ck_len = 0;
    store_job j = {0};
    nn_error ne = {0};
    memset(out, 0, sizeof *out);
    store *st = store_open(db, err, sizeof err);
    if (!st) fail_msg("store_open %s: %s", db, err);
    assert_int_equal(store_job_get(st, job_id, &j), STORE_OK);
    assert_int_equal(store_job_checkpoint_load(st, job_id, &ck, &ck_len, &out->epoch), STORE_OK);
    assert_int_equal(store_dataset_load(st, ds_id, NULL, &out->ds), STORE_OK);
    store_close(st);
    spec_limits lim = spec_limits_default();
    assert_int_equal(spec_job_parse_text(j.spec_json, strlen(j.spec_json), &lim, 0, &out->sj, NULL),
                     SPEC_OK);
    store_job_free(&j);
    out->model = nn_model_new(&out->sj.model, out->sj.fit.seed, &ne);
    assert_non_null(out->model);
    out->trainer = nn_trainer_new(out->model, &out->sj.compile, &out->sj.fit, &out->ds, NULL, &ne);
    assert_non_null(out->trainer);
    if (nn_trainer_restore(out->trainer, ck, ck_len, &ne) != NN_OK)
        fail_msg("restore: %s", ne.message);
    free(ck);
}

void it_restored_free(it_restored *r)
{
    nn_trainer_free(r->trainer);
    nn_model_free(r->model);
    spec_job_free(&r->sj);
    nn_dataset_free(&r->ds);
    memset(r, 0, sizeof *r);
}

int it_group_teardown(void **state)
{
    return it_stop(*state) == 0 ? 0 : -1;
}

int it_start_with_digits(it_server *s, const char *const *extra_args, char *id, size_t id_len)
{
    if (it_start(s, extra_args) != 0) return -1;
    return it_upload_digits(s, id, id_len);
}

char *it_get_svg(const it_server *s, const char *path)
{
    it_resp r;
    assert_int_equal(it_get(s, path, &r), 0);
    expect_status(&r, 200);
    assert_string_equal(r.content_type, "image/svg+xml");
    char file[700], cmd[800];
    snprintf(file, sizeof file, "%s/chart.svg", s->dir);
    assert_int_equal(it_write_file(file, r.body, r.len, 0), 0);
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", file);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "xmllint refused %s:\n%.3000s\n", path, r.body);
    assert_int_equal(rc, 0);
    unlink(file);
    char *body = r.body;
    r.body = NULL;
    it_resp_free(&r);
    return body;
}

int it_count_str(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) n++;
    return n;
}

void it_submit_job(const it_server *s, const char *spec, char *id, size_t id_len)
{
    it_resp r;
    assert_int_equal(it_post_json(s, "/v1/jobs", spec, &r), 0);
    expect_status(&r, 202);
    json_t *o = body_json(&r);
    snprintf(id, id_len, "%s", json_string_value(json_object_get(o, "id")));
    json_decref(o);
    it_resp_free(&r);
}

static int is_final(const char *status)
{
    return !strcmp(status, "succeeded") || !strcmp(status, "failed") ||
           !strcmp(status, "cancelled");
}

double it_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

json_t *it_wait_job(const it_server *s, const char *id, const char *want, double timeout_s,
                    long poll_ms)
{
    double t0 = it_now_s();
    for (;;) {
        json_t *o = it_job_get(s, id);
        const char *st = json_string_value(json_object_get(o, "status"));
        assert_non_null(st);
        if ((want && !strcmp(st, want)) || (!want && is_final(st))) return o;
        if (is_final(st)) {
            fprintf(stderr, "job %s ended %s (wanted %s): %s\n", id, st, want ? want : "",
                    json_string_value(json_object_get(o, "error")));
            json_decref(o);
            fail();
        }
        json_decref(o);
        if (it_now_s() - t0 > timeout_s)
            fail_msg("job %s did not reach %s in %.0f s", id, want ? want : "a final state",
                     timeout_s);
        sleep_ms(poll_ms);
    }
}

char *it_run_readme_block(const it_server *s, const char *marker)
{
    char *readme = read_file("README.md", NULL);
    assert_non_null(readme);
    char *mark = strstr(readme, marker);
    if (!mark) fail_msg("README.md has no %s", marker);
    char *begin = strstr(mark, "```sh\n");
    assert_non_null(begin);
    begin += 6;
    char *end = strstr(begin, "\n```");
    assert_non_null(end);
    *end = 0;
    char *fitd = strstr(begin, "FITD=");
    assert_non_null(fitd);
    char *eol = strchr(fitd, '\n');
    assert_non_null(eol);
    size_t cap = strlen(begin) + 128;
    char *script = malloc(cap);
    assert_non_null(script);
    snprintf(script, cap, "set -eu\n%.*sFITD=http://127.0.0.1:%u%s\n", (int)(fitd - begin),
             begin, s->port, eol);
    free(readme);

    char path[700], outpath[700], repo[512], cmd[4096];
    snprintf(path, sizeof path, "%s/readme-block.sh", s->dir);
    snprintf(outpath, sizeof outpath, "%s/readme-block.out", s->dir);
    assert_int_equal(it_write_file(path, script, strlen(script), 0), 0);
    free(script);
    /* In the temp folder (the files a block writes land there), with the
     * repository's tests/ linked in so that @tests/fixtures/... resolves. */
    assert_non_null(getcwd(repo, sizeof repo));
    snprintf(cmd, sizeof cmd, "cd %s && ln -sf %s/tests tests && timeout 300 bash %s > %s 2>&1",
             s->dir, repo, path, outpath);
    int st = system(cmd);
    char *out = read_file(outpath, NULL);
    assert_non_null(out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        it_dump_log(s);
        fprintf(stderr, "the README block after %s failed (status %d):\n%s", marker, st, out);
        free(out);
        fail();
    }
    return out;
}
