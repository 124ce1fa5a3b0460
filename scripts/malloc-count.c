// malloc-count: an LD_PRELOAD shim that counts heap allocations, for scripts/bench.sh section 6
// (SPEC §10: "no allocation per forwarded notification in steady state").
//
//   cc -O2 -shared -fPIC -o malloc-count.so scripts/malloc-count.c
//   MALLOC_COUNT_FILE=/tmp/count LD_PRELOAD=$PWD/malloc-count.so deribit-gateway --config ...
//   kill -USR2 PID     # the shim writes the count so far to /tmp/count: one decimal line
//
// Every call that can hand out a block is counted once, whichever thread makes it: malloc,
// calloc, realloc (also when it shrinks or frees), posix_memalign, aligned_alloc, memalign,
// valloc, pvalloc. Swift's runtime (swift_slowAlloc: malloc, or posix_memalign/aligned_alloc for
// over-aligned objects), Foundation and libdispatch all reach these through the dynamic linker,
// so they land here. The work is done by glibc's own allocator through its exported __libc_*
// entry points, not through dlsym(RTLD_NEXT, ...): dlsym can itself call calloc, which would
// recurse into the shim before the real function is known. free is not replaced: glibc's free
// releases what __libc_malloc handed out (it is the same allocator).
//
// Reading the count: the constructor installs a SIGUSR2 handler (only when MALLOC_COUNT_FILE is
// set; the gateway does not use SIGUSR2) that writes the count to "$MALLOC_COUNT_FILE.tmp" and
// renames it to $MALLOC_COUNT_FILE, with async-signal-safe calls only (open, write, close,
// rename; the number formatted by hand). A reader removes the file, sends the signal, and waits
// for the file to appear: the rename makes it appear complete. One signal at a time: two handlers
// running at once in two threads would share the .tmp file.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

// Relaxed: a statistic, not a synchronisation point. The reader asks for it (a signal) after the
// work it measures is visibly done (every frame received), so every increment it should see has
// happened before; atomicity keeps concurrent increments from being lost.
static unsigned long long allocations;
#define COUNT() __atomic_fetch_add(&allocations, 1, __ATOMIC_RELAXED)

void *malloc(size_t n) { COUNT(); return __libc_malloc(n); }
void *calloc(size_t k, size_t n) { COUNT(); return __libc_calloc(k, n); }
void *realloc(void *p, size_t n) { COUNT(); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { COUNT(); return __libc_memalign(a, n); }
void *valloc(size_t n) { COUNT(); return __libc_valloc(n); }
void *pvalloc(size_t n) { COUNT(); return __libc_pvalloc(n); }

int posix_memalign(void **out, size_t a, size_t n) {
    COUNT();
    // POSIX: a power of two and a multiple of sizeof(void *), else EINVAL (and *out untouched).
    if (a == 0 || (a & (a - 1)) != 0 || a % sizeof(void *) != 0) return EINVAL;
    void *p = __libc_memalign(a, n);
    if (p == NULL) return ENOMEM;
    *out = p;
    return 0;
}

static char path[4096];
static char tmp_path[4096 + 8];

static void on_sigusr2(int sig) {
    (void)sig;
    int saved = errno;
    unsigned long long v = __atomic_load_n(&allocations, __ATOMIC_RELAXED);
    char buf[24];  // 20 digits for 2^64-1, and the newline
    size_t i = sizeof buf;
    buf[--i] = '\n';
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v != 0);
    int fd = open(tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        const char *p = buf + i;
        size_t left = sizeof buf - i;
        while (left > 0) {
            ssize_t w = write(fd, p, left);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            p += w;
            left -= (size_t)w;
        }
        close(fd);
        if (left == 0) rename(tmp_path, path);
    }
    errno = saved;
}

__attribute__((constructor)) static void malloc_count_init(void) {
    const char *f = getenv("MALLOC_COUNT_FILE");
    if (f == NULL || *f == '\0' || strlen(f) >= sizeof path) return;
    strcpy(path, f);
    strcpy(tmp_path, f);
    strcat(tmp_path, ".tmp");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr2;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;  // interrupted slow system calls resume instead of failing with EINTR
    sigaction(SIGUSR2, &sa, NULL);
}
