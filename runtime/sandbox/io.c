/* Whole reads and writes on the sandbox's pipes and sockets: all len bytes
 * across short counts and EINTR; 0, or -1 at end of file or on an error
 * (the caller decides what that means). */
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/internal.h"

enum io_op { IO_READ, IO_WRITE, IO_SEND };

/* wait_ms > 0: on a non-blocking fd, EAGAIN waits that long for room. */
static int io_full(int fd, char *p, size_t len, enum io_op op, int wait_ms)
{
    while (len > 0) {
        ssize_t n = op == IO_READ    ? read(fd, p, len)
                    : op == IO_WRITE ? write(fd, p, len)
                                     : send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && wait_ms > 0) {
            struct pollfd w = {fd, op == IO_READ ? POLLIN : POLLOUT, 0};
            if (poll(&w, 1, wait_ms) == 1)
                continue;
        }
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int jr_sb_read_full(int fd, void *buf, size_t len)
{
    return io_full(fd, buf, len, IO_READ, 0);
}

int jr_sb_write_full(int fd, const void *buf, size_t len)
{
    return io_full(fd, (char *)buf, len, IO_WRITE, 0);
}

int jr_sb_write_full_wait(int fd, const void *buf, size_t len, int wait_ms)
{
    return io_full(fd, (char *)buf, len, IO_WRITE, wait_ms);
}

int jr_sb_send_full(int fd, const void *buf, size_t len)
{
    return io_full(fd, (char *)buf, len, IO_SEND, 0);
}
