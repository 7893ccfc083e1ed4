/* Test broker: hosts librdkafka's mock Kafka cluster on loopback and serves a
 * line-based control socket (down/up/create-topic) until SIGTERM, until the
 * owner process exits or until its lifetime runs out. */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t mock_stop;
static volatile sig_atomic_t mock_want_down;
static volatile sig_atomic_t mock_want_up;

static void mock_on_signal(int sig)
{
    if (sig == SIGUSR1)
        mock_want_down = 1;
    else if (sig == SIGUSR2)
        mock_want_up = 1;
    else
        mock_stop = 1;
}

static void mock_usage(FILE *to)
{
    fputs("usage: kafka-mock [-b BROKERS] [-o BOOTSTRAP_FILE] [-c CONTROL_FILE]\n"
          "                  [-w OWNER_PID] [-l LIFETIME_S]\n"
          "Hosts librdkafka's mock Kafka cluster on 127.0.0.1 and prints its\n"
          "bootstrap servers. Control socket (address in CONTROL_FILE), one\n"
          "command per line: ping | bootstraps | down [ID] | up [ID] |\n"
          "create-topic NAME PARTITIONS [REPLICATION] |\n"
          "leader TOPIC PARTITION ID | coordinator group|transaction KEY ID.\n"
          "Without ID, down/up apply to every broker. SIGUSR1 takes all\n"
          "brokers down, SIGUSR2 brings them up; SIGTERM stops.\n",
          to);
}

/* Write text to path atomically so readers never see a partial file. */
static int mock_write_file(const char *path, const char *text)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fprintf(f, "%s\n", text);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int mock_set_brokers(rd_kafka_mock_cluster_t *mc, int n_brokers, int id, bool up)
{
    for (int b = 1; b <= n_brokers; b++) {
        if (id != 0 && b != id)
            continue;
        rd_kafka_resp_err_t err =
            up ? rd_kafka_mock_broker_set_up(mc, b) : rd_kafka_mock_broker_set_down(mc, b);
        if (err)
            return -1;
    }
    fprintf(stderr, "kafka-mock: broker %s %s\n", id ? "" : "all", up ? "up" : "down");
    return 0;
}

/* Run one control command; write the reply ("ok ..." or "error ...") to out. */
static void mock_command(rd_kafka_mock_cluster_t *mc, int n_brokers, char *line, char *out,
                         size_t outsz)
{
    char *save = NULL;
    const char *cmd = strtok_r(line, " \t\r\n", &save);
    const char *a1 = strtok_r(NULL, " \t\r\n", &save);
    const char *a2 = strtok_r(NULL, " \t\r\n", &save);
    const char *a3 = strtok_r(NULL, " \t\r\n", &save);

    if (!cmd) {
        snprintf(out, outsz, "error empty command");
    } else if (strcmp(cmd, "ping") == 0) {
        snprintf(out, outsz, "ok");
    } else if (strcmp(cmd, "bootstraps") == 0) {
        snprintf(out, outsz, "ok %s", rd_kafka_mock_cluster_bootstraps(mc));
    } else if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) {
        int id = a1 ? atoi(a1) : 0;
        if (id < 0 || id > n_brokers)
            snprintf(out, outsz, "error no broker %s (1..%d)", a1, n_brokers);
        else if (mock_set_brokers(mc, n_brokers, id, cmd[0] == 'u') != 0)
            snprintf(out, outsz, "error %s failed", cmd);
        else
            snprintf(out, outsz, "ok");
    } else if (strcmp(cmd, "create-topic") == 0) {
        int parts = a2 ? atoi(a2) : 0;
        int repl = a3 ? atoi(a3) : 1;
        if (!a1 || parts < 1 || repl < 1 || repl > n_brokers) {
            snprintf(out, outsz, "error usage: create-topic NAME PARTITIONS [REPLICATION<=%d]",
                     n_brokers);
        } else {
            rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, a1, parts, repl);
            if (err)
                snprintf(out, outsz, "error %s", rd_kafka_err2str(err));
            else
                snprintf(out, outsz, "ok");
        }
    } else if (strcmp(cmd, "leader") == 0) {
        /* the mock elects no leader when a broker goes down: a test moves
         * the partitions of a stopped broker itself, as Kafka would */
        int part = a2 ? atoi(a2) : -1;
        int id = a3 ? atoi(a3) : 0;
        if (!a1 || part < 0 || id < 1 || id > n_brokers) {
            snprintf(out, outsz, "error usage: leader TOPIC PARTITION BROKER(1..%d)", n_brokers);
        } else {
            rd_kafka_resp_err_t err = rd_kafka_mock_partition_set_leader(mc, a1, part, id);
            if (err)
                snprintf(out, outsz, "error %s", rd_kafka_err2str(err));
            else
                snprintf(out, outsz, "ok");
        }
    } else if (strcmp(cmd, "coordinator") == 0) {
        /* coordinator group|transaction KEY BROKER */
        int id = a3 ? atoi(a3) : 0;
        if (!a1 || !a2 || id < 1 || id > n_brokers) {
            snprintf(out, outsz, "error usage: coordinator group|transaction KEY BROKER(1..%d)",
                     n_brokers);
        } else {
            rd_kafka_resp_err_t err = rd_kafka_mock_coordinator_set(mc, a1, a2, id);
            if (err)
                snprintf(out, outsz, "error %s", rd_kafka_err2str(err));
            else
                snprintf(out, outsz, "ok");
        }
    } else {
        snprintf(out, outsz, "error unknown command %s", cmd);
    }
}

/* Serve one control client: commands until EOF or a 5 s pause. */
static void mock_serve_client(rd_kafka_mock_cluster_t *mc, int n_brokers, int fd)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[1024];
    size_t len = 0;
    for (;;) {
        char *nl = memchr(buf, '\n', len);
        if (nl) {
            *nl = '\0';
            char reply[1200];
            mock_command(mc, n_brokers, buf, reply, sizeof reply - 1);
            size_t rl = strlen(reply);
            reply[rl++] = '\n';
            if (write(fd, reply, rl) != (ssize_t)rl)
                return;
            size_t used = (size_t)(nl - buf) + 1;
            memmove(buf, buf + used, len - used);
            len -= used;
            continue;
        }
        if (len == sizeof buf)
            return;
        ssize_t r = read(fd, buf + len, sizeof buf - len);
        if (r <= 0)
            return;
        len += (size_t)r;
    }
}

static int mock_listen(char *addr, size_t addrsz)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        close(fd);
        return -1;
    }
    snprintf(addr, addrsz, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    return fd;
}

int main(int argc, char **argv)
{
    int n_brokers = 1;
    const char *bootstrap_file = NULL, *control_file = NULL;
    long owner = 0, lifetime = 7200;
    int opt;
    while ((opt = getopt(argc, argv, "b:o:c:w:l:h")) != -1) {
        switch (opt) {
        case 'b': n_brokers = atoi(optarg); break;
        case 'o': bootstrap_file = optarg; break;
        case 'c': control_file = optarg; break;
        case 'w': owner = atol(optarg); break;
        case 'l': lifetime = atol(optarg); break;
        case 'h': mock_usage(stdout); return 0;
        default: mock_usage(stderr); return 64;
        }
    }
    if (optind != argc || n_brokers < 1 || n_brokers > 9 || lifetime < 1) {
        mock_usage(stderr);
        return 64;
    }

    struct sigaction sa = {.sa_handler = mock_on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof errstr);
    /* The handle only hosts the cluster; rd_kafka_new() takes conf. */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk) {
        fprintf(stderr, "kafka-mock: rd_kafka_new: %s\n", errstr);
        return 69;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, n_brokers);
    if (!mc) {
        fprintf(stderr, "kafka-mock: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 69;
    }

    char ctl_addr[64];
    int lfd = mock_listen(ctl_addr, sizeof ctl_addr);
    if (lfd < 0) {
        fprintf(stderr, "kafka-mock: control socket: %s\n", strerror(errno));
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 71;
    }

    const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mc);
    int rc = 0;
    /* The bootstrap file is written last: its presence means "ready". */
    if ((control_file && mock_write_file(control_file, ctl_addr) != 0) ||
        (bootstrap_file && mock_write_file(bootstrap_file, bootstraps) != 0)) {
        fprintf(stderr, "kafka-mock: cannot write state files: %s\n", strerror(errno));
        rc = 73;
        mock_stop = 1;
    }
    if (!bootstrap_file) {
        printf("%s\n", bootstraps);
        fflush(stdout);
    }
    fprintf(stderr, "kafka-mock: serving brokers=%d bootstraps=%s control=%s owner=%ld\n",
            n_brokers, bootstraps, ctl_addr, owner);

    time_t deadline = time(NULL) + lifetime;
    while (!mock_stop) {
        if (mock_want_down) {
            mock_want_down = 0;
            mock_set_brokers(mc, n_brokers, 0, false);
        }
        if (mock_want_up) {
            mock_want_up = 0;
            mock_set_brokers(mc, n_brokers, 0, true);
        }
        struct pollfd pfd = {.fd = lfd, .events = POLLIN};
        int pr = poll(&pfd, 1, 500);
        if (pr > 0) {
            int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (cfd >= 0) {
                mock_serve_client(mc, n_brokers, cfd);
                close(cfd);
            }
        }
        if (owner > 0 && kill((pid_t)owner, 0) != 0 && errno == ESRCH) {
            fprintf(stderr, "kafka-mock: owner %ld exited, stopping\n", owner);
            break;
        }
        if (time(NULL) >= deadline) {
            fprintf(stderr, "kafka-mock: lifetime of %lds reached, stopping\n", lifetime);
            break;
        }
    }

    if (bootstrap_file)
        unlink(bootstrap_file);
    if (control_file)
        unlink(control_file);
    close(lfd);
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
