/* The fastest a process can read a PTY that `cat` writes a file into:
 * forkpty, the child execs cat, the parent reads the master with 64 KiB
 * reads until EOF and prints MB/s. Run under the same CPU limit as an
 * environment (bench/pty-ceiling/run.sh) to see what any PTY-based
 * terminal server can reach there: the ceiling for the data channel's
 * throughput bar. */
#define _GNU_SOURCE
#include <errno.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s <file>\n", argv[0]);
        return 2;
    }
    struct winsize ws = {.ws_row = 50, .ws_col = 200};
    int master;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = forkpty(&master, NULL, NULL, &ws);
    if (pid < 0) {
        perror("forkpty");
        return 1;
    }
    if (pid == 0) {
        execlp("cat", "cat", argv[1], (char *)NULL);
        _exit(127);
    }
    static char buf[65536];
    long long total = 0;
    for (;;) {
        ssize_t n = read(master, buf, sizeof buf);
        if (n > 0) {
            total += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            break; /* EIO once the child has exited and the slave closed */
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waitpid(pid, NULL, 0);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%lld bytes in %.3f s: %.1f MB/s\n", total, s, total / s / 1e6);
    return 0;
}
