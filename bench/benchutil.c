/* benchutil: the VFS benchmarks' fakes3 (see benchutil.h). */
#include "benchutil.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void fail(const char *prog, const char *what, const char *out)
{
    fprintf(stderr, "%s: fakes3 %s (see %s)\n", prog, what, out);
    exit(1);
}

void bench_fakes3_start(bench_fakes3 *s, const char *prog, const char *build_dir,
                        const char *data_dir, const char *out_path, int latency_ms, const char *key,
                        const char *secret, const char *bucket)
{
    char bin[512], lat[32];
    snprintf(bin, sizeof bin, "%s/fakes3", build_dir);
    snprintf(lat, sizeof lat, "%dms", latency_ms);
    s->latency_ms = latency_ms;
    s->url[0] = 0;
    unlink(out_path);
    s->pid = fork();
    if (s->pid < 0)
        fail(prog, "could not be started (fork)", out_path);
    if (s->pid == 0) {
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(fd, 1);
        dup2(fd, 2);
        const char *argv[16] = {bin,      "--listen",     "127.0.0.1:0", "--access-key",
                                key,      "--secret-key", secret,        "--data-dir",
                                data_dir, "--bucket",     bucket};
        int n = 11;
        if (latency_ms > 0) {
            argv[n++] = "--latency";
            argv[n++] = lat;
        }
        argv[n] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 400; i++) { /* its start-up line names the port: up to 10 s */
        char text[1024] = "";
        FILE *f = fopen(out_path, "r");
        if (f) {
            size_t n = fread(text, 1, sizeof text - 1, f);
            text[n] = 0;
            fclose(f);
        }
        char *at = strstr(text, "listening on ");
        if (at) {
            at += strlen("listening on ");
            size_t n = strcspn(at, " \n");
            snprintf(s->url, sizeof s->url, "%.*s", (int)n, at);
            return;
        }
        if (waitpid(s->pid, NULL, WNOHANG) != 0)
            fail(prog, "exited at start", out_path);
        usleep(25000);
    }
    fail(prog, "did not start in 10 s", out_path);
}

void bench_fakes3_stop(bench_fakes3 *s)
{
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
}
