/* The "best plain scheduler" that benches/compare.rs measures heat against:
 * one thread, N probes on absolute deadlines, nothing else.
 *
 *   spawner N INTERVAL_MS CHECK [ARG...]
 *
 * Probe i runs `CHECK ARG... p<i>` every INTERVAL_MS. Its phase is heat's
 * (FNV-1a of "p<i>" modulo min(interval, 10 s), in ms) so that both face the
 * same bunching of deadlines. The deadlines sit in a binary min-heap; the
 * loop sleeps with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) to the
 * earliest, starts every probe that is due with posix_spawn (stdio inherited,
 * no attributes: the least a start can cost), and sets its next deadline to
 * the previous one plus the interval, so the schedule never drifts. Exited
 * children are reaped with waitpid(WNOHANG) after each wake; a check lasts
 * far less than the gap between two wakes, so none waits long as a zombie.
 * A probe's runs are not kept from overlapping: with checks of ~0.1 ms and
 * intervals of seconds they never do.
 *
 * On TERM it prints "spawned S failed F" on stderr and exits 0.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

struct slot {
    int64_t due; /* CLOCK_MONOTONIC, ns */
    int probe;
};

static struct slot *heap;
static int heap_len;
static volatile sig_atomic_t stopping;

static void on_term(int sig) {
    (void)sig;
    stopping = 1;
}

static int64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int earlier(int a, int b) {
    if (heap[a].due != heap[b].due)
        return heap[a].due < heap[b].due;
    return heap[a].probe < heap[b].probe;
}

static void swap(int a, int b) {
    struct slot t = heap[a];
    heap[a] = heap[b];
    heap[b] = t;
}

static void sift_up(int i) {
    while (i > 0 && earlier(i, (i - 1) / 2)) {
        swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void sift_down(int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && earlier(l, m))
            m = l;
        if (r < heap_len && earlier(r, m))
            m = r;
        if (m == i)
            return;
        swap(i, m);
        i = m;
    }
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: spawner N INTERVAL_MS CHECK [ARG...]\n");
        return 2;
    }
    int n = atoi(argv[1]);
    int64_t interval_ms = atoll(argv[2]);
    if (n <= 0 || interval_ms <= 0) {
        fprintf(stderr, "spawner: N and INTERVAL_MS must be positive\n");
        return 2;
    }
    int64_t interval = interval_ms * 1000000;
    int64_t span_ms = interval_ms < 10000 ? interval_ms : 10000;

    /* One argv per probe, built once: CHECK ARG... p<i> NULL. */
    int fixed = argc - 3;
    char ***argvs = calloc((size_t)n, sizeof *argvs);
    heap = calloc((size_t)n, sizeof *heap);
    if (!argvs || !heap) {
        perror("spawner");
        return 1;
    }
    int64_t t0 = mono_ns();
    for (int i = 0; i < n; i++) {
        char **a = calloc((size_t)fixed + 2, sizeof *a);
        char *name = malloc(16);
        if (!a || !name) {
            perror("spawner");
            return 1;
        }
        snprintf(name, 16, "p%d", i);
        for (int k = 0; k < fixed; k++)
            a[k] = argv[3 + k];
        a[fixed] = name;
        argvs[i] = a;
        int64_t phase = n == 1 ? 0 : (int64_t)(fnv1a(name) % (uint64_t)span_ms) * 1000000;
        heap[heap_len] = (struct slot){t0 + phase, i};
        sift_up(heap_len++);
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    unsigned long long spawned = 0, failed = 0;
    while (!stopping) {
        struct timespec ts = {(time_t)(heap[0].due / 1000000000), (long)(heap[0].due % 1000000000)};
        int rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
        if (rc == EINTR)
            continue;
        int64_t now = mono_ns();
        while (heap[0].due <= now) {
            pid_t pid;
            int p = heap[0].probe;
            if (posix_spawn(&pid, argvs[p][0], NULL, NULL, argvs[p], environ) == 0)
                spawned++;
            else
                failed++;
            heap[0].due += interval;
            sift_down(0);
        }
        while (waitpid(-1, NULL, WNOHANG) > 0) {
        }
    }
    fprintf(stderr, "spawned %llu failed %llu\n", spawned, failed);
    return 0;
}
