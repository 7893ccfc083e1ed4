/* ferry-keygen: makes the CURVE key pairs that [zmq] curve_* options take,
 * or shows the public key that belongs to a secret key. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>
#include <zmq.h>

#define KEY_Z85 40

static void usage(FILE *f)
{
    fprintf(f, "Usage: ferry-keygen [--secret-file FILE]\n"
               "       ferry-keygen --public-from FILE\n"
               "Make a CURVE key pair for the [zmq] curve_* options (Z85 text).\n"
               "\n"
               "      --secret-file FILE  write the secret key to FILE (created with mode 0600,\n"
               "                          never overwritten) and print only the public key;\n"
               "                          use it as curve_server_secret_file or\n"
               "                          curve_client_secret_file\n"
               "      --public-from FILE  print the public key of the secret key in FILE\n"
               "                          ('-' reads standard input)\n"
               "  -h, --help              show this help and exit\n"
               "      --version           show the version and exit\n"
               "\n"
               "Without options both keys go to standard output, as INI lines.\n");
}

/* The first line of path ("-": stdin) into buf, without its line end. */
static int read_key(const char *path, char *buf, size_t len)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!f) {
        fprintf(stderr, "ferry-keygen: error: cannot open %s: %s\n", path, strerror(errno));
        return EX_NOINPUT;
    }
    char *got = fgets(buf, (int)len, f);
    if (f != stdin)
        fclose(f);
    if (!got) {
        fprintf(stderr, "ferry-keygen: error: %s is empty\n", path);
        return EX_DATAERR;
    }
    buf[strcspn(buf, "\r\n")] = '\0';
    return EX_OK;
}

static int public_from(const char *path)
{
    char secret[256], public[KEY_Z85 + 1];
    uint8_t raw[32];
    int rc = read_key(path, secret, sizeof secret);
    if (rc != EX_OK)
        return rc;
    /* The key is checked but never echoed: it is a secret. */
    if (strlen(secret) != KEY_Z85 || !zmq_z85_decode(raw, secret) ||
        zmq_curve_public(public, secret) != 0) {
        fprintf(stderr,
                "ferry-keygen: error: %s does not hold a CURVE secret key "
                "(40 characters of Z85)\n",
                path);
        rc = EX_DATAERR;
    } else {
        printf("%s\n", public);
    }
    memset(secret, 0, sizeof secret);
    return rc;
}

static int keypair(const char *secret_file)
{
    char public[KEY_Z85 + 1], secret[KEY_Z85 + 1];
    if (zmq_curve_keypair(public, secret) != 0) {
        fprintf(stderr,
                "ferry-keygen: error: no CURVE key pair: %s (libzmq built without "
                "libsodium?)\n",
                zmq_strerror(errno));
        return EX_UNAVAILABLE;
    }
    int rc = EX_OK;
    if (secret_file) {
        int fd = open(secret_file, O_WRONLY | O_CREAT | O_EXCL, S_IRUSR | S_IWUSR);
        FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
            fprintf(stderr, "ferry-keygen: error: cannot create %s: %s\n", secret_file,
                    strerror(errno));
            if (fd >= 0)
                close(fd);
            rc = EX_CANTCREAT;
        } else if (fprintf(f, "%s\n", secret) < 0 || fclose(f) != 0) {
            fprintf(stderr, "ferry-keygen: error: cannot write %s: %s\n", secret_file,
                    strerror(errno));
            rc = EX_IOERR;
        } else {
            printf("%s\n", public);
        }
    } else {
        printf("# CURVE key pair from ferry-keygen: give the public key to the peers and\n"
               "# keep the secret key out of world-readable files\n"
               "public = %s\nsecret = %s\n",
               public, secret);
    }
    memset(secret, 0, sizeof secret);
    return rc;
}

int main(int argc, char **argv)
{
    enum { OPT_SECRET_FILE = 256, OPT_PUBLIC_FROM, OPT_VERSION };
    static const struct option lo[] = {
        {"secret-file", required_argument, NULL, OPT_SECRET_FILE},
        {"public-from", required_argument, NULL, OPT_PUBLIC_FROM},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *secret_file = NULL, *from = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case OPT_SECRET_FILE: secret_file = optarg; break;
        case OPT_PUBLIC_FROM: from = optarg; break;
        case 'h': usage(stdout); return EX_OK;
        case OPT_VERSION: printf("ferry-keygen (ferry) %s\n", PACKAGE_VERSION); return EX_OK;
        default: fprintf(stderr, "Try 'ferry-keygen --help'.\n"); return EX_USAGE;
        }
    }
    if (optind < argc || (secret_file && from)) {
        fprintf(stderr, "ferry-keygen: %s\nTry 'ferry-keygen --help'.\n",
                optind < argc ? "unexpected argument"
                              : "--secret-file and --public-from "
                                "do not go together");
        return EX_USAGE;
    }
    if (!zmq_has("curve")) {
        fprintf(stderr, "ferry-keygen: error: this libzmq has no CURVE support\n");
        return EX_UNAVAILABLE;
    }
    return from ? public_from(from) : keypair(secret_file);
}
