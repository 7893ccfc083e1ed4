/* ferry-conformance's TCP proxy: sits between a plugin and its broker so
 * the suite can cut every connection mid-stream (SIGUSR1) without touching
 * the broker. One process; two threads per forwarded connection. */
#include "config.h"

#include "conformance.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

enum { PROXY_MAX = 256 };

struct pair {
    int fd[2]; /* client side, broker side */
    int refs;  /* forwarding threads still running; the last closes both */
    bool used;
};

static struct pair pairs[PROXY_MAX];
static pthread_mutex_t pairs_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t cut_requested, stop_requested;

static void on_signal(int sig)
{
    if (sig == SIGUSR1)
        cut_requested = 1;
    else
        stop_requested = 1;
}

/* HOST:PORT -> address; the last colon separates the port. */
static int resolve(const char *spec, struct addrinfo **out, bool passive)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host)
        return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    return getaddrinfo(*host ? host : NULL, colon + 1, &hints, out) ? -1 : 0;
}

struct pump_arg {
    struct pair *p;
    int from, to;
};

static void *pump(void *arg)
{
    struct pump_arg a = *(struct pump_arg *)arg;
    free(arg);
    char buf[65536];
    for (;;) {
        ssize_t n = read(a.from, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(a.to, buf + off, (size_t)(n - off));
            if (w <= 0)
                goto done;
            off += w;
        }
    }
done:
    /* whichever side ended, the other direction ends too */
    shutdown(a.from, SHUT_RDWR);
    shutdown(a.to, SHUT_RDWR);
    pthread_mutex_lock(&pairs_lock);
    if (--a.p->refs == 0) {
        close(a.p->fd[0]);
        close(a.p->fd[1]);
        a.p->used = false;
    }
    pthread_mutex_unlock(&pairs_lock);
    return NULL;
}

/* Reset every connection now (SO_LINGER 0 turns the close into an RST, as
 * when a network path or a middlebox drops the connection). */
static unsigned cut_all(void)
{
    unsigned n = 0;
    pthread_mutex_lock(&pairs_lock);
    for (int i = 0; i < PROXY_MAX; i++) {
        if (!pairs[i].used || pairs[i].refs == 0)
            continue;
        struct linger lg = {1, 0};
        for (int k = 0; k < 2; k++) {
            setsockopt(pairs[i].fd[k], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            shutdown(pairs[i].fd[k], SHUT_RDWR);
        }
        n++;
    }
    pthread_mutex_unlock(&pairs_lock);
    return n;
}

static int connect_target(const struct addrinfo *ai)
{
    for (; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            return fd;
        close(fd);
    }
    return -1;
}

static void serve(int lfd, const struct addrinfo *target)
{
    while (!stop_requested) {
        if (cut_requested) {
            cut_requested = 0;
            unsigned n = cut_all();
            fprintf(stderr, "conformance proxy: cut %u connection%s\n", n, n == 1 ? "" : "s");
        }
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        if (poll(&pfd, 1, 50) <= 0)
            continue;
        int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        int tfd = connect_target(target);
        if (tfd < 0) {
            close(cfd); /* the broker is down: so is the path through us */
            continue;
        }
        pthread_mutex_lock(&pairs_lock);
        struct pair *p = NULL;
        for (int i = 0; i < PROXY_MAX && !p; i++)
            if (!pairs[i].used)
                p = &pairs[i];
        if (p)
            *p = (struct pair){.fd = {cfd, tfd}, .refs = 2, .used = true};
        pthread_mutex_unlock(&pairs_lock);
        if (!p) {
            close(cfd);
            close(tfd);
            continue;
        }
        for (int k = 0; k < 2; k++) {
            struct pump_arg *a = malloc(sizeof *a); /* freed by pump() */
            pthread_t th;
            if (a) {
                *a = (struct pump_arg){p, p->fd[k], p->fd[1 - k]};
                if (pthread_create(&th, NULL, pump, a) == 0) {
                    pthread_detach(th);
                    continue;
                }
                free(a);
            }
            /* no thread for this direction: count it as ended */
            pthread_mutex_lock(&pairs_lock);
            shutdown(p->fd[0], SHUT_RDWR);
            shutdown(p->fd[1], SHUT_RDWR);
            if (--p->refs == 0) {
                close(p->fd[0]);
                close(p->fd[1]);
                p->used = false;
            }
            pthread_mutex_unlock(&pairs_lock);
        }
    }
}

pid_t conf_proxy_start(const char *listen_spec, const char *target_spec, char *err, size_t errlen)
{
    struct addrinfo *la = NULL, *ta = NULL;
    if (resolve(listen_spec, &la, true) || resolve(target_spec, &ta, false)) {
        snprintf(err, errlen, "--proxy %s:%s: addresses must be HOST:PORT", listen_spec,
                 target_spec);
        if (la)
            freeaddrinfo(la);
        return -1;
    }
    int lfd = socket(la->ai_family, la->ai_socktype | SOCK_CLOEXEC, la->ai_protocol);
    int one = 1;
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(lfd, la->ai_addr, la->ai_addrlen) || listen(lfd, 64)) {
        snprintf(err, errlen, "--proxy: cannot listen on %s: %s", listen_spec, strerror(errno));
        if (lfd >= 0)
            close(lfd);
        freeaddrinfo(la);
        freeaddrinfo(ta);
        return -1;
    }
    freeaddrinfo(la);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "--proxy: fork: %s", strerror(errno));
        close(lfd);
        freeaddrinfo(ta);
        return -1;
    }
    if (pid > 0) {
        close(lfd);
        freeaddrinfo(ta);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the suite */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    serve(lfd, ta);
    freeaddrinfo(ta);
    close(lfd);
    _exit(0);
}
