/*
 * rxbench: the benchmark interface (interfaces/bench.xg) served and called
 * with OpenAFS's own rx library, built from rxgen's stubs of the same .xg.
 * It is the foreign peer our interop tests and benchmarks compare against.
 *
 *   rxbench server PORT [THREADS]
 *   rxbench check HOST PORT                    Null, Echo, bulk Send and Receive; prints OK
 *   rxbench null HOST PORT CALLS THREADS       prints calls/s (THREADS share one connection)
 *   rxbench send HOST PORT BYTES COUNT [THREADS]   prints MiB/s of COUNT streamed calls per
 *   rxbench receive HOST PORT BYTES COUNT [THREADS]  thread (THREADS share one connection)
 */
#include <afs/param.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <rx/rx.h>
#include <rx/rx_null.h>
#include "bench.h"

#define BENCH_SERVICE_ID 42
#define STREAM_CHUNK 65536

static char stream_buffer[STREAM_CHUNK];

afs_int32 SBENCH_Null(struct rx_call *call) { return 0; }

afs_int32 SBENCH_Echo(struct rx_call *call, bench_bytes *request, bench_bytes *reply) {
    reply->bench_bytes_len = request->bench_bytes_len;
    reply->bench_bytes_val = malloc(request->bench_bytes_len ? request->bench_bytes_len : 1);
    memcpy(reply->bench_bytes_val, request->bench_bytes_val, request->bench_bytes_len);
    return 0;
}

afs_int32 SBENCH_Send(struct rx_call *call, afs_uint32 length, afs_uint32 *received) {
    char buffer[STREAM_CHUNK];
    afs_uint32 total = 0;
    int got;
    while ((got = rx_Read(call, buffer, sizeof buffer)) > 0) total += got;
    *received = total;
    return 0;
}

afs_int32 SBENCH_Receive(struct rx_call *call, afs_uint32 length) {
    afs_uint32 sent = 0;
    while (sent < length) {
        int chunk = length - sent < STREAM_CHUNK ? length - sent : STREAM_CHUNK;
        if (rx_Write(call, stream_buffer, chunk) != chunk) return RX_CALL_DEAD;
        sent += chunk;
    }
    return 0;
}

afs_int32 SBENCH_Sleep(struct rx_call *call, afs_uint32 milliseconds) {
    usleep((milliseconds > 60000 ? 60000 : milliseconds) * 1000);
    return 0;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int serve(int port, int threads) {
    struct rx_securityClass *security[1];
    struct rx_service *service;
    if (rx_Init(htons(port)) != 0) { fprintf(stderr, "rx_Init failed\n"); return 1; }
    security[0] = rxnull_NewServerSecurityObject();
    service = rx_NewService(0, BENCH_SERVICE_ID, "bench", security, 1, BENCH_ExecuteRequest);
    if (service == NULL) { fprintf(stderr, "rx_NewService failed\n"); return 1; }
    rx_SetMinProcs(service, threads);
    rx_SetMaxProcs(service, threads);
    printf("listening %d\n", port);
    fflush(stdout);
    rx_StartServer(1);
    return 0;
}

static struct rx_connection *connect_to(const char *host, int port) {
    struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_DGRAM }, *found;
    if (getaddrinfo(host, NULL, &hints, &found) != 0) { fprintf(stderr, "cannot resolve %s\n", host); exit(1); }
    afs_uint32 address = ((struct sockaddr_in *)found->ai_addr)->sin_addr.s_addr;
    freeaddrinfo(found);
    if (rx_Init(0) != 0) { fprintf(stderr, "rx_Init failed\n"); exit(1); }
    return rx_NewConnection(address, htons(port), BENCH_SERVICE_ID, rxnull_NewClientSecurityObject(), 0);
}

static int bulk_send(struct rx_connection *conn, afs_uint32 bytes) {
    struct rx_call *call = rx_NewCall(conn);
    afs_uint32 received = 0, sent = 0;
    int code = StartBENCH_Send(call, bytes);
    while (code == 0 && sent < bytes) {
        int chunk = bytes - sent < STREAM_CHUNK ? bytes - sent : STREAM_CHUNK;
        if (rx_Write(call, stream_buffer, chunk) != chunk) code = RX_CALL_DEAD;
        sent += chunk;
    }
    if (code == 0) code = EndBENCH_Send(call, &received);
    code = rx_EndCall(call, code);
    if (code == 0 && received != bytes) { fprintf(stderr, "server counted %u of %u bytes\n", received, bytes); return -100; }
    return code;
}

static int bulk_receive(struct rx_connection *conn, afs_uint32 bytes) {
    struct rx_call *call = rx_NewCall(conn);
    char buffer[STREAM_CHUNK];
    afs_uint32 total = 0;
    int code = StartBENCH_Receive(call, bytes), got;
    while (code == 0 && total < bytes && (got = rx_Read(call, buffer, sizeof buffer)) > 0) {
        for (int index = 0; index < got; index++) if (buffer[index] != 0x5a) { fprintf(stderr, "bad byte at %u\n", total + index); code = -101; }
        total += got;
    }
    if (code == 0) code = EndBENCH_Receive(call);
    code = rx_EndCall(call, code);
    if (code == 0 && total != bytes) { fprintf(stderr, "received %u of %u bytes\n", total, bytes); return -102; }
    return code;
}

struct bulk_lane { struct rx_connection *conn; int receive; afs_uint32 bytes; int count; int code; };

static void *bulk_lane_run(void *argument) {
    struct bulk_lane *lane = argument;
    for (int index = 0; index < lane->count && lane->code == 0; index++)
        lane->code = lane->receive ? bulk_receive(lane->conn, lane->bytes) : bulk_send(lane->conn, lane->bytes);
    return NULL;
}

static int check(struct rx_connection *conn) {
    int code = BENCH_Null(conn);
    if (code) { fprintf(stderr, "Null: %d\n", code); return 1; }
    bench_bytes request, reply = { 0, NULL };
    request.bench_bytes_len = 5000;
    request.bench_bytes_val = malloc(5000);
    for (int index = 0; index < 5000; index++) request.bench_bytes_val[index] = (char)(index * 7);
    code = BENCH_Echo(conn, &request, &reply);
    if (code || reply.bench_bytes_len != 5000 || memcmp(reply.bench_bytes_val, request.bench_bytes_val, 5000) != 0) {
        fprintf(stderr, "Echo: %d (length %u)\n", code, reply.bench_bytes_len);
        return 1;
    }
    if ((code = bulk_send(conn, 1 << 20)) != 0) { fprintf(stderr, "Send: %d\n", code); return 1; }
    if ((code = bulk_receive(conn, 1 << 20)) != 0) { fprintf(stderr, "Receive: %d\n", code); return 1; }
    code = BENCH_Sleep(conn, 10);
    if (code) { fprintf(stderr, "Sleep: %d\n", code); return 1; }
    printf("OK\n");
    return 0;
}

struct null_lane { struct rx_connection *conn; int calls; int failures; };

static void *null_lane_run(void *argument) {
    struct null_lane *lane = argument;
    for (int index = 0; index < lane->calls; index++) if (BENCH_Null(lane->conn) != 0) lane->failures++;
    return NULL;
}

static int null_calls(struct rx_connection *conn, int calls, int threads) {
    pthread_t ids[64];
    struct null_lane lanes[64];
    if (threads < 1 || threads > 64) threads = 1;
    double start = now_seconds();
    for (int index = 0; index < threads; index++) {
        lanes[index] = (struct null_lane){ conn, calls / threads, 0 };
        pthread_create(&ids[index], NULL, null_lane_run, &lanes[index]);
    }
    int failures = 0;
    for (int index = 0; index < threads; index++) { pthread_join(ids[index], NULL); failures += lanes[index].failures; }
    double seconds = now_seconds() - start;
    printf("calls=%d failures=%d seconds=%.3f rate=%.0f\n", calls, failures, seconds, calls / seconds);
    return failures != 0;
}

int main(int argc, char **argv) {
    memset(stream_buffer, 0x5a, sizeof stream_buffer);
    if (argc >= 3 && strcmp(argv[1], "server") == 0) return serve(atoi(argv[2]), argc > 3 ? atoi(argv[3]) : 4);
    if (argc < 4) { fprintf(stderr, "usage: see the comment at the top of rxbench.c\n"); return 2; }
    struct rx_connection *conn = connect_to(argv[2], atoi(argv[3]));
    if (strcmp(argv[1], "check") == 0) return check(conn);
    if (strcmp(argv[1], "null") == 0 && argc >= 6) return null_calls(conn, atoi(argv[4]), atoi(argv[5]));
    if ((strcmp(argv[1], "send") == 0 || strcmp(argv[1], "receive") == 0) && argc >= 6) {
        afs_uint32 bytes = strtoul(argv[4], NULL, 10);
        int count = atoi(argv[5]);
        int threads = argc > 6 ? atoi(argv[6]) : 1;
        pthread_t ids[64];
        struct bulk_lane lanes[64];
        if (threads < 1 || threads > 64) threads = 1;
        double start = now_seconds();
        for (int index = 0; index < threads; index++) {
            lanes[index] = (struct bulk_lane){ conn, argv[1][0] == 'r', bytes, count, 0 };
            pthread_create(&ids[index], NULL, bulk_lane_run, &lanes[index]);
        }
        int code = 0;
        for (int index = 0; index < threads; index++) {
            pthread_join(ids[index], NULL);
            if (lanes[index].code != 0) code = lanes[index].code;
        }
        if (code != 0) { fprintf(stderr, "%s failed: %d\n", argv[1], code); return 1; }
        double seconds = now_seconds() - start;
        printf("bytes=%u count=%d threads=%d seconds=%.3f mibps=%.1f\n", bytes, count, threads, seconds, (double)bytes * count * threads / seconds / 1048576.0);
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
