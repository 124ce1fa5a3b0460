#ifndef DERIBIT_GATEWAY_CEPOLL_H
#define DERIBIT_GATEWAY_CEPOLL_H
#include <stdint.h>

// <sys/epoll.h> and <sys/eventfd.h> are not visible through Swift's Glibc module, and
// `struct epoll_event` is packed on x86_64; these wrappers keep both out of Swift.

enum {
    CEPOLL_IN = 0x001,
    CEPOLL_OUT = 0x004,
    CEPOLL_ERR = 0x008,
    CEPOLL_HUP = 0x010,
    CEPOLL_RDHUP = 0x2000,
};

int cepoll_create(void);
/// op: 1 add, 2 delete, 3 modify (EPOLL_CTL_*).
int cepoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// Fills events[i] and datas[i]; returns the count, 0 on timeout, -1 with errno.
int cepoll_wait(int epfd, uint32_t *events, uint64_t *datas, int max, int timeout_ms);
int cepoll_eventfd(void);
int cepoll_eventfd_signal(int fd);
int cepoll_eventfd_drain(int fd);
/// accept4(SOCK_NONBLOCK | SOCK_CLOEXEC): hidden behind _GNU_SOURCE in Swift's Glibc module.
int cepoll_accept_nonblock(int fd);
#endif
