// malloc-count: an LD_PRELOAD shim that counts heap allocations, for scripts/bench.sh (SPEC §10:
// "no allocation per forwarded notification in steady state").
//
// Every allocating entry point of the C library is counted and forwarded to glibc's own
// implementation (__libc_*), so no dlsym bootstrap is needed. Swift's runtime allocates through
// malloc / posix_memalign / aligned_alloc, so every Swift object and array buffer is counted.
//
// Reading the count: send the process SIGUSR2; the handler writes "<count>\n" to the file named by
// MALLOC_COUNT_FILE (created, truncated), using only async-signal-safe calls. The reader deletes the
// file, signals, and waits for a complete line.
//
//   cc -O2 -shared -fPIC -o malloc-count.so scripts/malloc-count.c
//   MALLOC_COUNT_FILE=/tmp/n LD_PRELOAD=$PWD/malloc-count.so deribit-gateway --config gw.json
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static unsigned long long allocations;  // updated with relaxed atomics from every thread
static char count_file[4096];

static inline void counted(void) { __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED); }

void *malloc(size_t n) { counted(); return __libc_malloc(n); }
void *calloc(size_t k, size_t n) { counted(); return __libc_calloc(k, n); }
// realloc(NULL, n) is an allocation; growing in place or moving is counted too (a new block).
void *realloc(void *p, size_t n) { if (n != 0) counted(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { counted(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { counted(); return __libc_memalign(a, n); }
void *valloc(size_t n) { counted(); return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), n); }
int posix_memalign(void **out, size_t a, size_t n) {
    if (a < sizeof(void *) || (a & (a - 1)) != 0) return EINVAL;
    counted();
    void *p = __libc_memalign(a, n);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

static void report(int sig) {
    (void)sig;
    int saved = errno;
    char digits[32];
    char line[33];
    unsigned long long v = __atomic_load_n(&allocations, __ATOMIC_RELAXED);
    int n = 0;
    do { digits[n++] = (char)('0' + v % 10); v /= 10; } while (v != 0);
    for (int i = 0; i < n; i++) line[i] = digits[n - 1 - i];
    line[n] = '\n';
    // Written to a temporary name and renamed, so a reader never sees a partial line.
    char tmp[sizeof count_file + 8];
    size_t len = strlen(count_file);
    memcpy(tmp, count_file, len);
    memcpy(tmp + len, ".tmp", 5);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        ssize_t w = write(fd, line, (size_t)n + 1);
        close(fd);
        if (w == n + 1) rename(tmp, count_file);
    }
    errno = saved;
}

__attribute__((constructor)) static void install(void) {
    const char *path = getenv("MALLOC_COUNT_FILE");
    if (path == NULL || strlen(path) >= sizeof count_file - 8) return;
    strcpy(count_file, path);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = report;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}
