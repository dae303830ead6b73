/*
 * The benchmark's load generator: NULL calls to the demo service over ONC
 * RPC/TCP or RxRPC/UDP from one single-threaded epoll loop, so that the
 * client costs a small fraction of what the server under test costs (on a
 * 2-core machine a Node.js client would take one of the two cores the
 * server processes need). Compiled by bench/harness.ts with the system cc at
 * bench time; never part of the package build.
 *
 * Life: one process per measurement, started by the harness; it owns its
 * sockets, runs for duration_ms, prints one JSON line and exits.
 *
 *   load-generator tcp HOST PORT CONNECTIONS DEPTH DURATION_MS PROGRAM VERSION
 *   load-generator udp HOST PORT CONNECTIONS DEPTH DURATION_MS SERVICE_ID
 *
 * TCP: CONNECTIONS connections, each with DEPTH pipelined calls (records
 * batched into one write per readable event). They open one after another,
 * each once the previous one has its first reply, as clients arriving over
 * time do: node:cluster hands a connection to the first process that has
 * acknowledged its previous one, so a burst of simultaneous connects lands
 * mostly on whichever process answers first (measured 12/4 of 16). UDP: CONNECTIONS sockets, each
 * its own source port (SO_REUSEPORT spreads peers by 4-tuple) and its own
 * RxRPC connection with min(DEPTH, 4) channels busy; a channel starts call
 * N+1 as soon as call N's reply arrives, which also acknowledges that reply
 * (the server completes call N on call N+1's DATA).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Bounds, each with its reason. */
#define CONNECTIONS_MAX 1024     /* far more than the server's default per-process limit is useful */
#define DEPTH_MAX 256            /* the slot index lives in the low byte of the xid */
#define LATENCY_BUCKETS 1000000  /* 1 µs buckets up to 1 s; slower calls land in the last one */
#define READ_BUFFER_BYTES 65536  /* one read drains many pipelined replies */
#define RX_CHANNELS 4            /* RxRPC: calls one connection carries at once */
#define RX_RETRANSMIT_NS 1000000000LL /* a request lost on loopback (full socket buffer) is resent after 1 s: sooner, an overloaded server (descheduled for 100+ ms) only gets duplicates to serve */

/* ONC RPC (RFC 5531): call header words and the accepted-success reply. */
#define RPC_CALL 0
#define RPC_REPLY 1
#define RPC_VERSION 2
#define RPC_MSG_ACCEPTED 0
#define RPC_SUCCESS 0
#define RPC_CALL_BYTES 40        /* xid mtype rpcvers prog vers proc + AUTH_NONE cred and verf */
#define RPC_REPLY_BYTES 24       /* xid mtype stat verf(2) accept_stat */
#define RECORD_MARK_LAST 0x80000000u

/* RxRPC header (28 bytes), the fields this client uses. */
#define RX_HEADER_BYTES 28
#define RX_DATA 1
#define RX_BUSY 3
#define RX_ABORT 4
#define RX_ACKALL 5
#define RX_CLIENT_INITIATED 0x01
#define RX_LAST_PACKET 0x04

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

static uint32_t latency_us[LATENCY_BUCKETS];
static uint64_t calls, errors, retransmits;
static uint64_t measure_until;

static void record_reply(uint64_t sent, uint64_t received, int failed) {
  if (received > measure_until) return;
  uint64_t micros = (received - sent) / 1000;
  latency_us[micros < LATENCY_BUCKETS ? micros : LATENCY_BUCKETS - 1]++;
  if (failed) errors++; else calls++;
}

static double percentile_ms(double fraction) {
  uint64_t total = 0, seen = 0;
  for (int i = 0; i < LATENCY_BUCKETS; i++) total += latency_us[i];
  uint64_t rank = (uint64_t)(total * fraction);
  for (int i = 0; i < LATENCY_BUCKETS; i++) {
    seen += latency_us[i];
    if (seen > rank) return i / 1000.0;
  }
  return 0;
}

static void put32(uint8_t *at, uint32_t value) {
  uint32_t network = htonl(value);
  memcpy(at, &network, 4);
}

static uint32_t get32(const uint8_t *at) {
  uint32_t network;
  memcpy(&network, at, 4);
  return ntohl(network);
}

/* ---------------------------------------------------------------- TCP */

struct tcp_connection {
  int fd;
  int answered; /* has had its first reply: the next connection may open */
  uint32_t generation;
  uint64_t sent_at[DEPTH_MAX];
  uint8_t input[READ_BUFFER_BYTES];
  size_t input_length;
};

static uint32_t rpc_program, rpc_version;

/* Appends one NULL call record for `slot` to `out`; returns its length. */
static size_t encode_null_call(uint8_t *out, uint32_t xid) {
  put32(out, RECORD_MARK_LAST | RPC_CALL_BYTES);
  uint32_t words[10] = {xid, RPC_CALL, RPC_VERSION, rpc_program, rpc_version, 0, 0, 0, 0, 0};
  for (int i = 0; i < 10; i++) put32(out + 4 + 4 * i, words[i]);
  return 4 + RPC_CALL_BYTES;
}

static void write_all(int fd, const uint8_t *bytes, size_t length) {
  /* At most DEPTH_MAX * 44 bytes: a loopback socket buffer always takes it, so a short write is a failure. */
  ssize_t written = write(fd, bytes, length);
  if (written != (ssize_t)length) die("write");
}

static void tcp_send_calls(struct tcp_connection *connection, const int *slots, int count, uint64_t deadline) {
  uint8_t output[DEPTH_MAX * (4 + RPC_CALL_BYTES)];
  size_t length = 0;
  uint64_t now = now_ns();
  if (now >= deadline) return;
  for (int i = 0; i < count; i++) {
    connection->sent_at[slots[i]] = now;
    length += encode_null_call(output + length, (++connection->generation << 8) | (uint32_t)slots[i]);
  }
  write_all(connection->fd, output, length);
}

/* Parses every whole reply record in the input buffer and sends one new call per reply. */
static int tcp_readable(struct tcp_connection *connection, uint64_t deadline) {
  ssize_t got = read(connection->fd, connection->input + connection->input_length, READ_BUFFER_BYTES - connection->input_length);
  if (got <= 0) {
    if (got < 0 && errno == EAGAIN) return 0;
    fprintf(stderr, "load-generator: tcp connection closed by the server\n");
    return -1;
  }
  connection->input_length += (size_t)got;
  connection->answered = 1;
  uint64_t received = now_ns();
  int slots[DEPTH_MAX];
  int count = 0;
  size_t offset = 0;
  while (connection->input_length - offset >= 4) {
    uint32_t length = get32(connection->input + offset) & ~RECORD_MARK_LAST;
    if (length < RPC_REPLY_BYTES || length > READ_BUFFER_BYTES - 4) { fprintf(stderr, "load-generator: bad record of %u bytes\n", length); return -1; }
    if (connection->input_length - offset < 4 + length) break;
    const uint8_t *reply = connection->input + offset + 4;
    int slot = (int)(get32(reply) & 0xff);
    int failed = get32(reply + 4) != RPC_REPLY || get32(reply + 8) != RPC_MSG_ACCEPTED || get32(reply + 20) != RPC_SUCCESS;
    record_reply(connection->sent_at[slot], received, failed);
    slots[count++] = slot;
    offset += 4 + length;
  }
  memmove(connection->input, connection->input + offset, connection->input_length - offset);
  connection->input_length -= offset;
  tcp_send_calls(connection, slots, count, deadline);
  return 0;
}

static int connect_tcp(const struct sockaddr_in *server) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (const struct sockaddr *)server, sizeof *server) < 0 && errno != EINPROGRESS) die("connect");
  return fd;
}

static void open_tcp(struct tcp_connection *connections, int index, const struct sockaddr_in *server, int epoll) {
  connections[index].fd = connect_tcp(server);
  struct epoll_event event = {.events = EPOLLOUT, .data.u32 = (uint32_t)index};
  if (epoll_ctl(epoll, EPOLL_CTL_ADD, connections[index].fd, &event) < 0) die("epoll_ctl");
}

static void run_tcp(const struct sockaddr_in *server, int connection_count, int depth, uint64_t deadline, int epoll) {
  static struct tcp_connection connections[CONNECTIONS_MAX];
  int opened = 1;
  open_tcp(connections, 0, server, epoll);
  int slots[DEPTH_MAX];
  for (int slot = 0; slot < depth; slot++) slots[slot] = slot;
  struct epoll_event events[64];
  while (now_ns() < deadline) {
    int ready = epoll_wait(epoll, events, 64, 10);
    for (int i = 0; i < ready; i++) {
      struct tcp_connection *connection = &connections[events[i].data.u32];
      if (events[i].events & EPOLLOUT) {
        /* Connected: start the pipeline, then only wait for replies. */
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = events[i].data.u32};
        epoll_ctl(epoll, EPOLL_CTL_MOD, connection->fd, &event);
        tcp_send_calls(connection, slots, depth, deadline);
      } else if (tcp_readable(connection, deadline) < 0) {
        exit(1);
      }
    }
    if (opened < connection_count && connections[opened - 1].answered) open_tcp(connections, opened++, server, epoll);
  }
  for (int i = 0; i < opened; i++) close(connections[i].fd);
}

/* ---------------------------------------------------------------- UDP */

struct rx_connection {
  int fd;
  uint32_t cid;
  uint32_t serial;
  uint32_t call_number[RX_CHANNELS];
  uint64_t sent_at[RX_CHANNELS];
  uint64_t last_sent[RX_CHANNELS];
};

static uint32_t rx_epoch, rx_service_id;

static void rx_send(struct rx_connection *connection, int channel, uint8_t type, uint8_t flags, int with_opcode) {
  uint8_t packet[RX_HEADER_BYTES + 4] = {0};
  put32(packet + 0, rx_epoch);
  put32(packet + 4, connection->cid | (uint32_t)channel);
  put32(packet + 8, connection->call_number[channel]);
  put32(packet + 12, type == RX_DATA ? 1 : 0);
  put32(packet + 16, ++connection->serial);
  packet[20] = type;
  packet[21] = flags;
  packet[26] = (uint8_t)(rx_service_id >> 8);
  packet[27] = (uint8_t)rx_service_id;
  /* The request body is the rxgen opcode: NULL is procedure 0, no arguments. */
  size_t length = RX_HEADER_BYTES + (with_opcode ? 4 : 0);
  connection->last_sent[channel] = now_ns();
  if (send(connection->fd, packet, length, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED) die("send");
}

static void rx_start_call(struct rx_connection *connection, int channel, uint64_t deadline) {
  uint64_t now = now_ns();
  if (now >= deadline) return;
  connection->call_number[channel]++;
  connection->sent_at[channel] = now;
  rx_send(connection, channel, RX_DATA, RX_CLIENT_INITIATED | RX_LAST_PACKET, 1);
}

static void rx_readable(struct rx_connection *connection, uint64_t deadline) {
  uint8_t packet[2048];
  for (;;) {
    ssize_t got = recv(connection->fd, packet, sizeof packet, 0);
    if (got < 0) return; /* EAGAIN, or an ICMP error surfacing: the retransmit timer covers it */
    if (got < RX_HEADER_BYTES || (packet[21] & RX_CLIENT_INITIATED)) continue;
    int channel = (int)(get32(packet + 4) & (RX_CHANNELS - 1));
    uint32_t call_number = get32(packet + 8);
    uint8_t type = packet[20];
    if (call_number != connection->call_number[channel] || connection->sent_at[channel] == 0) continue;
    if (type == RX_DATA && (packet[21] & RX_LAST_PACKET)) {
      record_reply(connection->sent_at[channel], now_ns(), 0);
    } else if (type == RX_ABORT || type == RX_BUSY) {
      record_reply(connection->sent_at[channel], now_ns(), 1);
    } else {
      continue; /* ACKs of our request: the reply is what we wait for */
    }
    connection->sent_at[channel] = 0;
    rx_start_call(connection, channel, deadline);
  }
}

static void rx_retransmit_late(struct rx_connection *connections, int connection_count, int channels) {
  uint64_t now = now_ns();
  for (int i = 0; i < connection_count; i++) {
    for (int channel = 0; channel < channels; channel++) {
      if (connections[i].sent_at[channel] == 0 || now - connections[i].last_sent[channel] < RX_RETRANSMIT_NS) continue;
      retransmits++;
      rx_send(&connections[i], channel, RX_DATA, RX_CLIENT_INITIATED | RX_LAST_PACKET, 1);
    }
  }
}

static void run_udp(const struct sockaddr_in *server, int connection_count, int depth, uint64_t deadline, int epoll) {
  static struct rx_connection connections[CONNECTIONS_MAX];
  int channels = depth < RX_CHANNELS ? depth : RX_CHANNELS;
  rx_epoch = (uint32_t)time(NULL) & 0x7fffffff; /* top bit clear: the server matches on our address too */
  uint32_t first_cid = ((uint32_t)getpid() << 12) & 0x3ffffffc;
  for (int i = 0; i < connection_count; i++) {
    struct rx_connection *connection = &connections[i];
    connection->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (connection->fd < 0) die("socket");
    if (connect(connection->fd, (const struct sockaddr *)server, sizeof *server) < 0) die("connect");
    connection->cid = first_cid + 4u * (uint32_t)i;
    struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(epoll, EPOLL_CTL_ADD, connection->fd, &event) < 0) die("epoll_ctl");
    for (int channel = 0; channel < channels; channel++) rx_start_call(connection, channel, deadline);
  }
  struct epoll_event events[64];
  uint64_t next_sweep = now_ns() + RX_RETRANSMIT_NS;
  while (now_ns() < deadline) {
    int ready = epoll_wait(epoll, events, 64, 10);
    for (int i = 0; i < ready; i++) rx_readable(&connections[events[i].data.u32], deadline);
    if (now_ns() >= next_sweep) {
      rx_retransmit_late(connections, connection_count, channels);
      next_sweep = now_ns() + RX_RETRANSMIT_NS / 4;
    }
  }
  /* ACKALL the last reply of every channel, so the server does not retransmit into a closed port. */
  for (int i = 0; i < connection_count; i++) {
    for (int channel = 0; channel < channels; channel++) rx_send(&connections[i], channel, RX_ACKALL, RX_CLIENT_INITIATED, 0);
    close(connections[i].fd);
  }
}

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: %s tcp|udp HOST PORT CONNECTIONS DEPTH DURATION_MS (PROGRAM VERSION | SERVICE_ID)\n", argv[0]);
    return 2;
  }
  int tcp = strcmp(argv[1], "tcp") == 0;
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  if (inet_pton(AF_INET, argv[2], &server.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", argv[2]); return 2; }
  int connection_count = atoi(argv[4]), depth = atoi(argv[5]);
  long duration_ms = atol(argv[6]);
  if (connection_count < 1 || connection_count > CONNECTIONS_MAX || depth < 1 || depth > DEPTH_MAX || duration_ms < 1) {
    fprintf(stderr, "connections must be in [1, %d], depth in [1, %d], duration > 0\n", CONNECTIONS_MAX, DEPTH_MAX);
    return 2;
  }
  if (tcp) {
    if (argc < 9) { fprintf(stderr, "tcp needs PROGRAM VERSION\n"); return 2; }
    rpc_program = (uint32_t)strtoul(argv[7], NULL, 0);
    rpc_version = (uint32_t)strtoul(argv[8], NULL, 0);
  } else {
    rx_service_id = (uint32_t)strtoul(argv[7], NULL, 0);
  }
  int epoll = epoll_create1(0);
  if (epoll < 0) die("epoll_create1");
  uint64_t started = now_ns();
  measure_until = started + (uint64_t)duration_ms * 1000000ull;
  if (tcp) run_tcp(&server, connection_count, depth, measure_until, epoll);
  else run_udp(&server, connection_count, depth, measure_until, epoll);
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  double cpu_ms = usage.ru_utime.tv_sec * 1e3 + usage.ru_utime.tv_usec / 1e3 + usage.ru_stime.tv_sec * 1e3 + usage.ru_stime.tv_usec / 1e3;
  printf("{\"calls\":%llu,\"errors\":%llu,\"retransmits\":%llu,\"elapsedMs\":%ld,\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"cpuMs\":%.1f}\n",
         (unsigned long long)calls, (unsigned long long)errors, (unsigned long long)retransmits, duration_ms, percentile_ms(0.5), percentile_ms(0.99), cpu_ms);
  return 0;
}
