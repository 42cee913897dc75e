/*
 * benchutil: what the VFS benchmarks share (bench_vfs, bench_write, bench_hydrate): a real fakes3
 * started as a child process on a free 127.0.0.1 port, with latency or not, its objects in a
 * folder of the caller's, stopped with SIGTERM.
 *
 * A benchmark that cannot start its server cannot measure anything: bench_fakes3_start prints
 * why (naming the server's output file) and exits the process with status 1.
 * Threads: call from the main thread (fork).
 */
#ifndef BENCH_BENCHUTIL_H
#define BENCH_BENCHUTIL_H

#include <sys/types.h>

typedef struct bench_fakes3 {
    pid_t pid;
    int latency_ms;
    char url[64]; /* http://127.0.0.1:PORT */
} bench_fakes3;

/*
 * Starts build_dir/fakes3 with the key pair, the bucket created, its objects in data_dir (kept
 * across restarts) and --latency when latency_ms > 0; stdout and stderr go to out_path. Returns
 * once it listens (s->url set). prog names the benchmark in a failure message.
 */
void bench_fakes3_start(bench_fakes3 *s, const char *prog, const char *build_dir,
                        const char *data_dir, const char *out_path, int latency_ms, const char *key,
                        const char *secret, const char *bucket);
/* SIGTERM, and waits for it. */
void bench_fakes3_stop(bench_fakes3 *s);

#endif
