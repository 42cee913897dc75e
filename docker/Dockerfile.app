# An application image that carries the litestream VFS: build/litestream-vfs.so, ltxctl, the
# sqlite3 CLI, Debian's python3 and the examples (examples/c built, examples/python as it is).
#
#   docker build -f docker/Dockerfile.app -t ltxvfs/app .              # from the repository root
#   docker run --rm -e LITESTREAM_REPLICA_URL=... -e AWS_ACCESS_KEY_ID=... -e AWS_SECRET_ACCESS_KEY=... \
#       ltxvfs/app litestream-example reader
#
# In the image: /usr/local/lib/litestream-vfs.so (LTXVFS_EXTENSION names it for the examples;
# the sqlite3 CLI loads it with `.load /usr/local/lib/litestream-vfs`), /usr/local/bin/ltxctl,
# /usr/local/bin/litestream-example (the C example), /opt/ltxvfs/examples (all of them). It runs
# as the unprivileged user app (uid 10001); the write buffer goes to /tmp (TMPDIR).
FROM debian:12-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      liblz4-dev libsqlite3-dev check libjansson-dev libmicrohttpd-dev libcurl4-openssl-dev \
      libssl-dev libexpat1-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Every folder the top-level CMakeLists.txt adds (tests/cli/test_docker_compose.sh checks this),
# and scenarios/ (the scenario runner's, once CMake adds it).
COPY CMakeLists.txt ./
COPY lib lib
COPY chaos chaos
COPY vfs vfs
COPY tools tools
COPY fakes3 fakes3
COPY tests tests
COPY bench bench
COPY scenarios scenarios
COPY examples/c examples/c
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
 && cmake --build build -j"$(nproc)" --target litestream-vfs ltxctl \
 && cc -O2 -o build/litestream-example examples/c/litestream_example.c \
      $(pkg-config --cflags --libs sqlite3) \
 && strip build/ltxctl build/litestream-example && strip --strip-unneeded build/litestream-vfs.so

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends sqlite3 libsqlite3-0 python3 libcurl4 liblz4-1 \
      libssl3 libexpat1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --create-home --shell /bin/sh app
COPY --from=build /src/build/litestream-vfs.so /usr/local/lib/litestream-vfs.so
COPY --from=build /src/build/ltxctl /usr/local/bin/ltxctl
COPY --from=build /src/build/litestream-example /usr/local/bin/litestream-example
COPY examples /opt/ltxvfs/examples
COPY docker/app-wait.sh /usr/local/bin/app-wait
ENV LTXVFS_EXTENSION=/usr/local/lib/litestream-vfs \
    AWS_REGION=us-east-1 \
    TMPDIR=/tmp
USER app
WORKDIR /home/app
CMD ["sqlite3"]
