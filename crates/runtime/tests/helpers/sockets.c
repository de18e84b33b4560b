/* Opens the sockets a program with CAP_NET_RAW could open and prints, one
 * line each, "<kind> ok" or "<kind> <errno name>". "ping" sends an ICMP
 * echo over a SOCK_DGRAM ICMP socket (net.ipv4.ping_group_range, no
 * capability needed) to 127.0.0.1 and prints "ping ok" when the reply came.
 * Built statically by crates/runtime/tests/isolation.rs and run inside an
 * environment, whose minimal image has no such tool. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const char *err_name(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EINVAL: return "EINVAL";
    case EAGAIN: return "EAGAIN";
    default: return "other";
    }
}

static void try_open(const char *kind, int domain, int type, int protocol) {
    int fd = socket(domain, type, protocol);
    if (fd < 0) {
        printf("%s %s\n", kind, err_name(errno));
    } else {
        printf("%s ok\n", kind);
        close(fd);
    }
}

static void ping_loopback(void) {
    int fd = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
    if (fd < 0) {
        printf("ping %s\n", err_name(errno));
        return;
    }
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in to;
    memset(&to, 0, sizeof to);
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct icmphdr echo;
    memset(&echo, 0, sizeof echo);
    echo.type = ICMP_ECHO; /* the kernel sets the id and the checksum */
    echo.un.echo.sequence = htons(1);
    if (sendto(fd, &echo, sizeof echo, 0, (struct sockaddr *)&to, sizeof to) < 0) {
        printf("ping send-%s\n", err_name(errno));
        close(fd);
        return;
    }
    unsigned char reply[256];
    ssize_t n = recv(fd, reply, sizeof reply, 0);
    if (n >= (ssize_t)sizeof(struct icmphdr) && ((struct icmphdr *)reply)->type == ICMP_ECHOREPLY)
        printf("ping ok\n");
    else
        printf("ping no-reply-%s\n", n < 0 ? err_name(errno) : "bad");
    close(fd);
}

int main(void) {
    try_open("inet-raw-icmp", AF_INET, SOCK_RAW, IPPROTO_ICMP);
    try_open("inet-raw-raw", AF_INET, SOCK_RAW, IPPROTO_RAW);
    try_open("inet-raw-tcp", AF_INET, SOCK_RAW, IPPROTO_TCP);
    try_open("packet-raw", AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    try_open("packet-dgram", AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
    try_open("inet-packet", AF_INET, SOCK_PACKET, htons(ETH_P_ALL));
    ping_loopback();
    return 0;
}
