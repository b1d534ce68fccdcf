/*
 * bare_mhd.c — the peer of fitd's polling benchmark (bench/service.sh): a minimal
 * libmicrohttpd server that answers every GET with one fixed JSON document of the
 * size of a job resource (about 1.4 KB), with the daemon flags and options that
 * server/http.c uses (internal polling thread with MHD_USE_AUTO, i.e. epoll on
 * Linux; a thread pool; the same connection limit, timeout and per-connection
 * memory). It does no routing, no store access and no logging: what is left is
 * libmicrohttpd itself, which is the ceiling fitd's request path is compared with.
 *
 *   bare_mhd [--port N] [--port-file FILE] [--threads N]
 *
 * Listens on 127.0.0.1 (port 0 = any free port, written to FILE once listening);
 * runs until SIGINT or SIGTERM. Other methods get 405.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* A job resource as GET /v1/jobs/{id} returns it for a finished digits job. */
static const char job_doc[] =
    "{\"id\":\"job_w6wmq2w4077d0mresdy20mpp54\",\"name\":null,\"status\":\"succeeded\","
    "\"progress\":{\"epoch\":2,\"epochs\":2,\"batch\":57,\"batches\":57},"
    "\"data\":{\"train\":\"ds_qn9473c36qw48ceajryy1d1b5g\",\"validation\":null,\"test\":null},"
    "\"metrics\":{\"epoch\":2,\"loss\":4.0849668699999997,\"accuracy\":0.40233722900000002,"
    "\"regularization_loss\":0.0,\"learning_rate\":0.00100000005,"
    "\"seconds\":0.00049475400000000003},\"best_epoch\":null,\"error\":null,"
    "\"test_metrics\":null,\"attempts\":1,\"created_at\":\"2026-11-27T13:38:25.611Z\","
    "\"started_at\":\"2026-11-27T13:38:25.611Z\",\"finished_at\":\"2026-11-27T13:38:25.633Z\","
    "\"updated_at\":\"2026-11-27T13:38:25.633Z\",\"spec\":{\"name\":\"\","
    "\"data\":{\"train\":\"ds_qn9473c36qw48ceajryy1d1b5g\"},\"model\":{\"input_shape\":[64],"
    "\"layers\":[{\"type\":\"dense\",\"name\":\"dense\",\"units\":10,\"activation\":\"softmax\","
    "\"use_bias\":true,\"kernel_initializer\":{\"name\":\"glorot_uniform\",\"seed\":null},"
    "\"bias_initializer\":{\"name\":\"zeros\",\"seed\":null},\"kernel_regularizer\":null,"
    "\"bias_regularizer\":null,\"activity_regularizer\":null}]},\"compile\":{\"optimizer\":"
    "{\"name\":\"adam\",\"learning_rate\":0.001,\"beta_1\":0.90000000000000002,"
    "\"beta_2\":0.999,\"epsilon\":9.9999999999999995e-8,\"amsgrad\":false,\"clipnorm\":null,"
    "\"clipvalue\":null,\"global_clipnorm\":null},\"loss\":{\"name\":"
    "\"sparse_categorical_crossentropy\",\"from_logits\":false},\"metrics\":[\"accuracy\"]},"
    "\"fit\":{\"epochs\":2,\"batch_size\":32,\"shuffle\":true,\"seed\":0,"
    "\"validation_split\":0.0,\"early_stopping\":null}}}\n";

static const char not_allowed[] = "{\"status\":405}\n";

/* The same header fitd adds to every reply, so the wire bytes are alike. */
static const char request_id[] = "0123456789abcdef";

static struct MHD_Response *resp_ok;
static struct MHD_Response *resp_405;

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **req_cls)
{
    static int marker;
    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    /* First call: headers only. Answer on the next call, as fitd does. */
    if (*req_cls == NULL) {
        *req_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) { /* a body: read and drop */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0) return MHD_queue_response(conn, 405, resp_405);
    return MHD_queue_response(conn, MHD_HTTP_OK, resp_ok);
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long v = strtoul(s, &end, 10);
    if (!*s || *end || v > max) return -1;
    *out = v;
    return 0;
}

static int write_port_file(const char *path, unsigned port)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int ok = fprintf(f, "%u\n", port) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long port = 0, threads = 4;
    const char *port_file = NULL;
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    sigset_t sigs;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--port") == 0 && v && parse_uint(v, 65535, &port) == 0) {
            i++;
        } else if (strcmp(a, "--threads") == 0 && v && parse_uint(v, 256, &threads) == 0 &&
                   threads > 0) {
            i++;
        } else if (strcmp(a, "--port-file") == 0 && v) {
            port_file = v;
            i++;
        } else {
            fprintf(stderr, "usage: bare_mhd [--port N] [--port-file FILE] [--threads N]\n");
            return 2;
        }
    }

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* before MHD's threads start */
    signal(SIGPIPE, SIG_IGN);

    resp_ok = MHD_create_response_from_buffer(sizeof job_doc - 1, (void *)(uintptr_t)job_doc,
                                              MHD_RESPMEM_PERSISTENT);
    resp_405 = MHD_create_response_from_buffer(sizeof not_allowed - 1,
                                               (void *)(uintptr_t)not_allowed,
                                               MHD_RESPMEM_PERSISTENT);
    if (!resp_ok || !resp_405 ||
        MHD_add_response_header(resp_ok, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
            MHD_YES ||
        MHD_add_response_header(resp_ok, "X-Request-Id", request_id) != MHD_YES ||
        MHD_add_response_header(resp_405, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") !=
            MHD_YES ||
        MHD_add_response_header(resp_405, "Allow", "GET") != MHD_YES) {
        fprintf(stderr, "bare_mhd: out of memory\n");
        goto out;
    }

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* The flags and options of server/http.c's http_server_start, with its defaults. */
    d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG,
                         (uint16_t)port, NULL, NULL, &on_access, NULL, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
                         (unsigned)threads, MHD_OPTION_CONNECTION_LIMIT, 1024u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                         (size_t)128 * 1024, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bare_mhd: cannot listen on 127.0.0.1:%lu\n", port);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned bound = info ? info->port : (unsigned)port;
    if (port_file && write_port_file(port_file, bound) != 0) {
        fprintf(stderr, "bare_mhd: cannot write %s\n", port_file);
        goto out;
    }
    fprintf(stderr, "bare_mhd: listening on 127.0.0.1:%u with %lu threads\n", bound, threads);

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    rc = 0;
out:
    if (d) MHD_stop_daemon(d);
    if (resp_ok) MHD_destroy_response(resp_ok);
    if (resp_405) MHD_destroy_response(resp_405);
    return rc;
}
