# fitd — the service image.
#
#   docker build -t fitd .
#   docker run -d --name fitd -p 8080:8080 -v fitd-data:/var/lib/fitd fitd
#
# Two stages from the same base: `build` has the compilers and -dev packages,
# builds fitd and runs the unit tests (a failing test fails the build); the
# runtime stage gets the shared libraries fitd links and the one binary
# (migrations and the API document are compiled into it). Plain Dockerfile
# syntax: no BuildKit extensions are needed.

FROM debian:bookworm-slim AS build
# The same packages as `sh tests/deps.sh build`, plus cmocka and libcurl for the tests.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc make pkg-config libc6-dev libopenblas-dev zlib1g-dev libjansson-dev \
      libmicrohttpd-dev libsqlite3-dev nettle-dev libcmocka-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The context has no .git (see .dockerignore): pass the revision in when wanted,
#   docker build --build-arg GIT_REV=$(git rev-parse --short HEAD) -t fitd .
ARG GIT_REV=unknown
# OPENBLAS_NUM_THREADS=1: the tests compare against fixed golden values and run
# wherever the builder runs; one BLAS thread keeps them quick and predictable.
RUN tests=$(ls tests/unit/test_*.c | sed 's|^tests/unit/\(.*\)\.c$|build/tests/\1|') \
 && make -j"$(nproc)" BUILD=build GIT_REV="$GIT_REV" build/fitd $tests \
 && for t in $tests; do \
      echo "== $t"; OPENBLAS_NUM_THREADS=1 "$t" || { echo "unit test failed: $t" >&2; exit 1; }; \
    done \
 && build/fitd --version

FROM debian:bookworm-slim
# No documentation, manual pages or translations from the packages below
# (copyright files stay).
RUN printf '%s\n' \
      'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
      'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
      'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/lintian/*' \
      > /etc/dpkg/dpkg.cfg.d/fitd-slim \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libopenblas0-pthread libjansson4 libmicrohttpd12 libsqlite3-0 libnettle8 zlib1g \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && useradd --system --user-group --uid 10001 --home-dir /var/lib/fitd \
      --shell /usr/sbin/nologin fitd \
 && mkdir -p /var/lib/fitd \
 && chown fitd:fitd /var/lib/fitd \
 && chmod 0750 /var/lib/fitd
COPY --from=build /src/build/fitd /usr/local/bin/fitd
# Fail the build here, not at the first start, if a runtime library is missing.
RUN fitd --version

ENV FITD_DB=/var/lib/fitd/fitd.db \
    FITD_LISTEN=0.0.0.0:8080
VOLUME /var/lib/fitd
WORKDIR /var/lib/fitd
USER fitd
EXPOSE 8080
# `fitd healthcheck` asks GET /healthz on the address FITD_LISTEN names (no curl here).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["fitd", "healthcheck"]
# fitd drains on SIGTERM: running jobs checkpoint and go back to the queue, within
# --shutdown-timeout (10 s by default, the same as `docker stop`'s grace period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["fitd"]
CMD ["serve"]
