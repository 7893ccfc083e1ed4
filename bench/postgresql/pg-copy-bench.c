/* Baseline (b) of the postgresql sink benchmark: the same rows COPYed by a
 * plain libpq program, batch by batch, each batch in one transaction (COPY
 * into a temporary table, INSERT ... SELECT ... ON CONFLICT (id) DO NOTHING,
 * COMMIT): the ceiling for any client doing the same work.
 * Usage: pg-copy-bench CONNINFO SOURCE_TABLE TARGET_TABLE BATCH
 * Prints "rows=N seconds=S rows_per_s=R". */
#include "config.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(PGconn *c, const char *what)
{
    fprintf(stderr, "pg-copy-bench: %s: %s", what, PQerrorMessage(c));
    exit(1);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        die(c, sql);
    PQclear(r);
}

/* Append s escaped for COPY's text format. */
static void put(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + 2 * n + 2 > *cap) {
        *cap = (*len + 2 * n + 2) * 2;
        *buf = realloc(*buf, *cap);
        if (!*buf)
            exit(1);
    }
    for (const char *p = s; *p; p++) {
        switch (*p) {
        case '\\':
            (*buf)[(*len)++] = '\\';
            (*buf)[(*len)++] = '\\';
            break;
        case '\t':
            (*buf)[(*len)++] = '\\';
            (*buf)[(*len)++] = 't';
            break;
        case '\n':
            (*buf)[(*len)++] = '\\';
            (*buf)[(*len)++] = 'n';
            break;
        case '\r':
            (*buf)[(*len)++] = '\\';
            (*buf)[(*len)++] = 'r';
            break;
        default: (*buf)[(*len)++] = *p;
        }
    }
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: pg-copy-bench CONNINFO SOURCE_TABLE TARGET_TABLE BATCH\n");
        return 64;
    }
    int batch = atoi(argv[4]);
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK)
        die(c, "connect");
    char sql[1024];
    /* the rows, read before the clock starts */
    snprintf(sql, sizeof sql,
             "SELECT id, destination, coalesce(routing_key, ''), "
             "coalesce(headers::text, '{}'), body::text FROM %s",
             argv[2]);
    PGresult *rows = PQexec(c, sql);
    if (PQresultStatus(rows) != PGRES_TUPLES_OK)
        die(c, "select");
    int n = PQntuples(rows);
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS %s (id text PRIMARY KEY, received_at "
             "timestamptz NOT NULL, destination text, routing_key text, headers jsonb, body jsonb)",
             argv[3]);
    exec_ok(c, sql);
    exec_ok(c,
            "CREATE TEMP TABLE stage (id text, destination text, routing_key text, headers text, "
            "body text) "
            "ON COMMIT DELETE ROWS");
    char ins[1024];
    snprintf(ins, sizeof ins,
             "INSERT INTO %s (id, received_at, destination, routing_key, headers, body) "
             "SELECT id, now(), destination, routing_key, headers::jsonb, body::jsonb FROM stage "
             "ON CONFLICT (id) DO NOTHING",
             argv[3]);
    char *buf = NULL;
    size_t cap = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i += batch) {
        size_t len = 0;
        for (int j = i; j < n && j < i + batch; j++) {
            for (int f = 0; f < 5; f++) {
                put(&buf, &len, &cap, PQgetvalue(rows, j, f));
                buf[len++] = f == 4 ? '\n' : '\t';
            }
        }
        exec_ok(c, "BEGIN");
        PGresult *r = PQexec(c, "COPY stage FROM STDIN");
        if (PQresultStatus(r) != PGRES_COPY_IN)
            die(c, "copy");
        PQclear(r);
        if (PQputCopyData(c, buf, (int)len) != 1 || PQputCopyEnd(c, NULL) != 1)
            die(c, "copy data");
        r = PQgetResult(c);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die(c, "copy end");
        PQclear(r);
        while ((r = PQgetResult(c)) != NULL)
            PQclear(r);
        exec_ok(c, ins);
        exec_ok(c, "COMMIT");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("rows=%d seconds=%.3f rows_per_s=%.0f\n", n, s, n / s);
    free(buf);
    PQclear(rows);
    PQfinish(c);
    return 0;
}
