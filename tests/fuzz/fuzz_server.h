/* fuzz_server.h — one in-process fitd HTTP server for the server fuzz targets,
 * and a minimal HTTP/1.1 client for them (see fuzz.h).
 *
 * The server is built as main builds it (http_server_new, api_datasets_register,
 * api_jobs_register) on 127.0.0.1:0 with a migrated database in a fresh temp
 * folder (FUZZ_TMPDIR, else /dev/shm when writable, else /tmp), but without a
 * worker pool: no request the targets send can create a job, and a NULL pool is
 * allowed by every pool_* call. Logging is cut to errors so the fuzzer's output
 * stays readable. State is process-wide and the targets run one input at a time,
 * so nothing here is locked. */
#ifndef FITD_FUZZ_SERVER_H
#define FITD_FUZZ_SERVER_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "fuzz.h"
#include "http.h"
#include "log.h"
#include "store.h"

static struct {
    int started, failed;
    srv_config cfg;
    api_ctx ctx;
    http_server *srv;
    unsigned port;
    char dir[512];
} fs;

static void rm_dir(const char *dir)
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

unsigned fuzz_server_port(void)
{
    if (fs.started) return fs.port;
    if (fs.failed) return 0;
    fs.failed = 1; /* until it has started */
    char err[512] = "";
    signal(SIGPIPE, SIG_IGN);
    log_set_level(LOG_ERROR);
    const char *tmp = getenv("FUZZ_TMPDIR");
    if (!tmp || !*tmp) tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fs.dir, sizeof fs.dir, "%s/fitd-fuzz-XXXXXX", tmp);
    if (!mkdtemp(fs.dir)) {
        fprintf(stderr, "fuzz_server: mkdtemp %s: %s\n", fs.dir, strerror(errno));
        return 0;
    }
    config_defaults(&fs.cfg);
    snprintf(fs.cfg.db_path, sizeof fs.cfg.db_path, "%s/fitd.db", fs.dir);
    fs.cfg.http_threads = 2;
    fs.cfg.connection_timeout_s = 5;
    store *st = store_open(fs.cfg.db_path, err, sizeof err);
    if (!st || store_migrate(st) != STORE_OK) {
        fprintf(stderr, "fuzz_server: database: %s\n", st ? store_errmsg(st) : err);
        store_close(st);
        rm_dir(fs.dir);
        return 0;
    }
    store_close(st);
    fs.ctx.cfg = &fs.cfg;
    fs.ctx.pool = NULL;
    http_config hc = {.host = "127.0.0.1",
                      .port = 0,
                      .n_threads = 2,
                      .connection_timeout_s = 5,
                      .max_body_default = fs.cfg.max_body_json,
                      .db_path = fs.cfg.db_path,
                      .app = &fs.ctx};
    fs.srv = http_server_new(&hc);
    if (!fs.srv || api_datasets_register(fs.srv) != 0 || api_jobs_register(fs.srv) != 0 ||
        http_server_start(fs.srv, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_server: cannot start: %s\n", err);
        http_server_free(fs.srv);
        fs.srv = NULL;
        rm_dir(fs.dir);
        return 0;
    }
    fs.port = http_server_port(fs.srv);
    fs.started = 1;
    fs.failed = 0;
    return fs.port;
}

void fuzz_server_stop(void)
{
    if (!fs.started) return;
    http_server_free(fs.srv);
    fs.srv = NULL;
    rm_dir(fs.dir);
    fs.started = 0;
}

/* Read into a growing buffer until `want` bytes are there (SIZE_MAX: until EOF). */
static int read_more(int fd, char **buf, size_t *len, size_t *cap)
{
    if (*len + 4096 + 1 > *cap) {
        size_t ncap = *cap ? *cap * 2 : 8192;
        while (ncap < *len + 4096 + 1) ncap *= 2;
        char *nb = realloc(*buf, ncap);
        if (!nb) return -1;
        *buf = nb;
        *cap = ncap;
    }
    ssize_t n = recv(fd, *buf + *len, *cap - *len - 1, 0);
    if (n <= 0) return -1;
    *len += (size_t)n;
    (*buf)[*len] = 0;
    return 0;
}

int fuzz_http(const void *req, size_t len, char **body)
{
    int fd = -1, status = -1;
    char *buf = NULL;
    size_t blen = 0, cap = 0;
    if (body) *body = NULL;
    unsigned port = fuzz_server_port();
    if (!port) return -1;
    /* libFuzzer's once-a-second SIGALRM (its -timeout watchdog) would interrupt
     * connect/send/recv with EINTR; hold it for this bounded exchange (sockets
     * time out after 10 s) and let it arrive afterwards. */
    sigset_t alrm, old_mask;
    sigemptyset(&alrm);
    sigaddset(&alrm, SIGALRM);
    pthread_sigmask(SIG_BLOCK, &alrm, &old_mask);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) goto out;
    struct timeval tv = {.tv_sec = 10, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "fuzz_http: connect: %s\n", strerror(errno));
        goto out;
    }
    /* Close with a reset once the reply is read: tens of thousands of requests a
     * minute would otherwise use up the ephemeral ports in TIME_WAIT. */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    const char *p = req;
    size_t left = len;
    while (left) {
        ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
        if (n <= 0) break; /* the server may answer early and close: read it */
        p += n;
        left -= (size_t)n;
    }
    /* Headers. */
    char *eoh = NULL;
    while (!(eoh = buf ? strstr(buf, "\r\n\r\n") : NULL))
        if (read_more(fd, &buf, &blen, &cap) != 0) {
            fprintf(stderr, "fuzz_http: no complete reply (%zu bytes): %s\n", blen, strerror(errno));
            goto out;
        }
    int code = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &code) != 1 || code < 100 || code > 599) goto out;
    /* Body: Content-Length bytes (none for HEAD, 204, 304). */
    size_t want = 0;
    int head = len >= 5 && memcmp(req, "HEAD ", 5) == 0;
    for (char *h = buf; h && h < eoh; h = strstr(h, "\r\n"), h = h ? h + 2 : NULL)
        if (strncasecmp(h, "Content-Length:", 15) == 0) want = strtoul(h + 15, NULL, 10);
    if (head || code == 204 || code == 304) want = 0;
    size_t hdr_len = (size_t)(eoh - buf) + 4;
    while (blen - hdr_len < want)
        if (read_more(fd, &buf, &blen, &cap) != 0) break;
    status = code;
    if (body) {
        size_t n = blen - hdr_len;
        *body = malloc(n + 1);
        if (*body) {
            memcpy(*body, buf + hdr_len, n);
            (*body)[n] = 0;
        }
    }
out:
    if (fd >= 0) close(fd);
    free(buf);
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    return status;
}

#endif
