/* Host (POSIX) port: the firmware as a process speaking the protocol over a pseudo-terminal
 * (--pty, prints "PTY /dev/pts/N"), stdin/stdout (--stdio) or a TCP socket on 127.0.0.1
 * (--tcp PORT). Cycles are nanoseconds from CLOCK_MONOTONIC (cycle unit 2). Exits cleanly when
 * the link closes or on SIGTERM/SIGINT. */
#define _XOPEN_SOURCE 600
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "esnn_board.h"
#include "esnn_port.h"

void esnn_port_host_args(int argc, char **argv);

enum { LINK_STDIO, LINK_PTY, LINK_TCP };

static int link_kind = LINK_STDIO;
static int tcp_port = 0;
static int in_fd = 0, out_fd = 1;
static int peer_seen = 0; /* pty: a host has written to us at least once */
static volatile sig_atomic_t stop = 0;
static uint8_t out_buf[4096];
static size_t out_len = 0;
static uint8_t in_buf[256];
static size_t in_len = 0, in_pos = 0;
static struct timespec t0;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--pty | --stdio | --tcp PORT]\n", prog);
    exit(2);
}

void esnn_port_host_args(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pty") == 0) {
            link_kind = LINK_PTY;
        } else if (strcmp(argv[i], "--stdio") == 0) {
            link_kind = LINK_STDIO;
        } else if (strcmp(argv[i], "--tcp") == 0 && i + 1 < argc) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end != '\0' || p < 1 || p > 65535) usage(argv[0]);
            link_kind = LINK_TCP;
            tcp_port = (int)p;
        } else {
            usage(argv[0]);
        }
    }
}

static void die(const char *what)
{
    fprintf(stderr, "esnn host port: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void open_pty(void)
{
    struct termios tio;
    const char *name;
    int slave;
    int fd = posix_openpt(O_RDWR | O_NOCTTY);
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0) die("posix_openpt");
    name = ptsname(fd);
    if (name == NULL) die("ptsname");
    /* raw mode is a property of the slave side: set it once, then let the host open it */
    slave = open(name, O_RDWR | O_NOCTTY);
    if (slave < 0) die("open pty slave");
    if (tcgetattr(slave, &tio) != 0) die("tcgetattr");
    cfmakeraw(&tio);
    if (tcsetattr(slave, TCSANOW, &tio) != 0) die("tcsetattr");
    close(slave);
    in_fd = out_fd = fd;
    printf("PTY %s\n", name);
    fflush(stdout);
}

static void open_tcp(void)
{
    struct sockaddr_in addr;
    int one = 1, fd, conn;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)tcp_port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
    if (listen(fd, 1) != 0) die("listen");
    printf("TCP 127.0.0.1:%d\n", tcp_port);
    fflush(stdout);
    do {
        conn = accept(fd, NULL, NULL);
    } while (conn < 0 && errno == EINTR && !stop);
    if (conn < 0) {
        if (stop) exit(0);
        die("accept");
    }
    close(fd);
    setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    in_fd = out_fd = conn;
}

void esnn_port_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: a blocking read returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (link_kind == LINK_PTY) open_pty();
    else if (link_kind == LINK_TCP) open_tcp();
    clock_gettime(CLOCK_MONOTONIC, &t0);
}

/* Reads are buffered: one read() takes whatever is available (up to sizeof in_buf), so a
 * frame costs one or two syscalls, not one per byte. */
int esnn_port_getc(void)
{
    ssize_t r;
    struct pollfd pfd;
    if (stop) return -1;
    if (in_pos < in_len) return in_buf[in_pos++];
    esnn_port_flush();
    while (!stop) {
        if (link_kind == LINK_PTY && !peer_seen) {
            /* Until a host has opened the slave, the master reports hang-up: wait for data. */
            pfd.fd = in_fd;
            pfd.events = POLLIN;
            pfd.revents = 0;
            if (poll(&pfd, 1, 20) < 0 && errno != EINTR) return -1;
            if (!(pfd.revents & POLLIN)) continue;
        }
        r = read(in_fd, in_buf, sizeof in_buf);
        if (r > 0) {
            peer_seen = 1;
            in_len = (size_t)r;
            in_pos = 1;
            return in_buf[0];
        }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && errno == EIO && link_kind == LINK_PTY && !peer_seen) continue;
        return -1; /* EOF, or EIO after the host closed the pty */
    }
    return -1;
}

void esnn_port_putc(uint8_t c)
{
    if (out_len == sizeof out_buf) esnn_port_flush();
    out_buf[out_len++] = c;
}

void esnn_port_flush(void)
{
    size_t done = 0;
    ssize_t w;
    while (done < out_len) {
        w = write(out_fd, out_buf + done, out_len - done);
        if (w < 0 && errno == EINTR && !stop) continue;
        if (w <= 0) break; /* link gone: drop the bytes, getc will report the close */
        done += (size_t)w;
    }
    out_len = 0;
}

void esnn_port_cycles_start(void)
{
    clock_gettime(CLOCK_MONOTONIC, &t0);
}

uint32_t esnn_port_cycles_read(void)
{
    struct timespec t1;
    int64_t ns;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    return ns > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}
