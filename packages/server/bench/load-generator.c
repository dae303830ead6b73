/*
 * The benchmark's load generator: NULL calls to the demo service over ONC
 * RPC/TCP or RxRPC/UDP from one single-threaded epoll loop, so that the
 * client costs a small fraction of what the server under test costs. On a
 * 2-core machine the client shares the cores with the server: if it spends
 * c CPU per call and the server s, one server process is capped at 1/s
 * calls/s and two at 2/(s + c), so the 2-vs-1 ratio 2s/(s + c) reaches 1.7
 * only while c <= 0.18 s. Every cycle here is taken from the server, so the
 * generator moves many calls per system call and per wake-up. Compiled by
 * bench/harness.ts with the system cc at bench time; never part of the
 * package build.
 *
 * Life: one process per measurement, started by the harness; it owns its
 * sockets, runs for duration_ms, prints one JSON line and exits.
 *
 *   load-generator [-b BATCH] [-w WAIT_US] tcp HOST PORT CONNECTIONS DEPTH DURATION_MS PROGRAM VERSION
 *   load-generator [-b BATCH] [-w WAIT_US] udp HOST PORT SOCKETS DEPTH DURATION_MS SERVICE_ID
 *
 * TCP: CONNECTIONS connections, each with DEPTH pipelined calls; a connection
 * writes new calls, all in one write, once BATCH of its DEPTH calls have been
 * answered (default 1: a new call per reply). The connections open one after
 * another, each once the previous one has its first reply, as clients
 * arriving over time do: node:cluster hands a connection to the first
 * process that has acknowledged its previous one, so a burst of simultaneous
 * connects lands mostly on whichever process answers first (measured 12/4 of
 * 16).
 *
 * UDP: SOCKETS sockets, each its own source port (SO_REUSEPORT spreads peers
 * by 4-tuple, so every RxRPC connection of a socket reaches the same server
 * process), each carrying DEPTH calls at once on ceil(DEPTH / 4) RxRPC
 * connections of up to 4 channels. A channel starts call N+1 as soon as call
 * N's reply arrives, which also acknowledges that reply (the server completes
 * call N on call N+1's DATA). A socket's replies are read with recvmmsg and
 * the calls they free are sent with one sendmmsg.
 *
 * Both: after serving a wake-up, the loop waits WAIT_US (default 0) before
 * it sleeps in epoll again, so that one wake-up finds the replies of many
 * connections (the kernel's interrupt coalescing, done by the client). The
 * latency figures include that wait; the server is kept busy meanwhile by
 * the calls still outstanding (CONNECTIONS x DEPTH).
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
#define READ_BUFFER_BYTES 65536  /* one read drains many pipelined replies (DEPTH_MAX replies are 7 KiB) */
#define EPOLL_EVENTS_MAX 256     /* one wake-up serves up to this many ready sockets */
#define WAIT_US_MAX 10000        /* the coalescing wait stays far below the 1 s retransmit timer */
#define RX_CHANNELS 4            /* RxRPC: calls one connection carries at once */
#define RX_CONNECTIONS_PER_SOCKET_MAX (DEPTH_MAX / RX_CHANNELS)
#define RX_BATCH_MAX DEPTH_MAX   /* one recvmmsg/sendmmsg moves at most a socket's outstanding calls */
#define RX_PACKET_BYTES 2048     /* NULL replies, ACKs and aborts are far smaller; a larger datagram is truncated and ignored */
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
/* System calls that moved calls or replies (read/write, recvmmsg/sendmmsg) and epoll wake-ups that found work. */
static uint64_t io_calls, wakeups;
static uint64_t measure_until;
static int batch = 1;
static long wait_us;

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

/* Waits WAIT_US after a wake-up that found work, so that the next one finds more. */
static void coalesce(int served) {
  if (served == 0 || wait_us == 0) return;
  struct timespec pause = {.tv_sec = 0, .tv_nsec = wait_us * 1000};
  nanosleep(&pause, NULL);
}

/* ---------------------------------------------------------------- TCP */

struct tcp_connection {
  int fd;
  int answered; /* has had its first reply: the next connection may open */
  uint32_t generation;
  int free_count; /* slots answered and not yet called again */
  int free_slots[DEPTH_MAX];
  uint64_t sent_at[DEPTH_MAX];
  uint8_t input[READ_BUFFER_BYTES];
  size_t input_length;
};

static uint32_t rpc_program, rpc_version;

/* Appends one NULL call record with `xid` to `out`; returns its length. */
static size_t encode_null_call(uint8_t *out, uint32_t xid) {
  put32(out, RECORD_MARK_LAST | RPC_CALL_BYTES);
  uint32_t words[10] = {xid, RPC_CALL, RPC_VERSION, rpc_program, rpc_version, 0, 0, 0, 0, 0};
  for (int i = 0; i < 10; i++) put32(out + 4 + 4 * i, words[i]);
  return 4 + RPC_CALL_BYTES;
}

/* Calls every free slot of the connection, all in one write. */
static void tcp_send_calls(struct tcp_connection *connection, uint64_t deadline) {
  uint8_t output[DEPTH_MAX * (4 + RPC_CALL_BYTES)];
  size_t length = 0;
  uint64_t now = now_ns();
  if (now >= deadline) return;
  for (int i = 0; i < connection->free_count; i++) {
    int slot = connection->free_slots[i];
    connection->sent_at[slot] = now;
    length += encode_null_call(output + length, (++connection->generation << 8) | (uint32_t)slot);
  }
  connection->free_count = 0;
  /* At most DEPTH_MAX * 44 bytes, never more than DEPTH calls outstanding: a loopback socket buffer always takes it, so a short write is a failure. */
  io_calls++;
  if (write(connection->fd, output, length) != (ssize_t)length) die("write");
}

/* Takes every whole reply record in the input buffer; returns how many. */
static int tcp_take_replies(struct tcp_connection *connection, uint64_t received) {
  int count = 0;
  size_t offset = 0;
  while (connection->input_length - offset >= 4) {
    uint32_t length = get32(connection->input + offset) & ~RECORD_MARK_LAST;
    if (length < RPC_REPLY_BYTES || length > READ_BUFFER_BYTES - 4) { fprintf(stderr, "load-generator: bad record of %u bytes\n", length); exit(1); }
    if (connection->input_length - offset < 4 + length) break;
    const uint8_t *reply = connection->input + offset + 4;
    int slot = (int)(get32(reply) & 0xff);
    int failed = get32(reply + 4) != RPC_REPLY || get32(reply + 8) != RPC_MSG_ACCEPTED || get32(reply + 20) != RPC_SUCCESS;
    record_reply(connection->sent_at[slot], received, failed);
    connection->free_slots[connection->free_count++] = slot;
    count++;
    offset += 4 + length;
  }
  memmove(connection->input, connection->input + offset, connection->input_length - offset);
  connection->input_length -= offset;
  return count;
}

/* Reads what has arrived (again while a read fills the buffer), then calls the freed slots once BATCH are free; returns the replies taken. */
static int tcp_readable(struct tcp_connection *connection, int depth, uint64_t deadline) {
  int taken = 0;
  for (;;) {
    size_t room = READ_BUFFER_BYTES - connection->input_length;
    io_calls++;
    ssize_t got = read(connection->fd, connection->input + connection->input_length, room);
    if (got < 0 && errno == EAGAIN) break;
    if (got <= 0) { fprintf(stderr, "load-generator: tcp connection closed by the server\n"); exit(1); }
    connection->input_length += (size_t)got;
    connection->answered = 1;
    taken += tcp_take_replies(connection, now_ns());
    if ((size_t)got < room) break;
  }
  if (connection->free_count >= (batch < depth ? batch : depth)) tcp_send_calls(connection, deadline);
  return taken;
}

static void open_tcp(struct tcp_connection *connection, int index, int depth, const struct sockaddr_in *server, int epoll) {
  connection->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (connection->fd < 0) die("socket");
  int one = 1;
  setsockopt(connection->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(connection->fd, (const struct sockaddr *)server, sizeof *server) < 0 && errno != EINPROGRESS) die("connect");
  for (int slot = 0; slot < depth; slot++) connection->free_slots[slot] = slot;
  connection->free_count = depth;
  struct epoll_event event = {.events = EPOLLOUT, .data.u32 = (uint32_t)index};
  if (epoll_ctl(epoll, EPOLL_CTL_ADD, connection->fd, &event) < 0) die("epoll_ctl");
}

static void run_tcp(const struct sockaddr_in *server, int connection_count, int depth, uint64_t deadline, int epoll) {
  static struct tcp_connection connections[CONNECTIONS_MAX];
  int opened = 1;
  open_tcp(&connections[0], 0, depth, server, epoll);
  struct epoll_event events[EPOLL_EVENTS_MAX];
  while (now_ns() < deadline) {
    int ready = epoll_wait(epoll, events, EPOLL_EVENTS_MAX, 10);
    int served = 0;
    if (ready > 0) wakeups++;
    for (int i = 0; i < ready; i++) {
      struct tcp_connection *connection = &connections[events[i].data.u32];
      if (events[i].events & EPOLLOUT) {
        /* Connected: start the pipeline, then only wait for replies. */
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = events[i].data.u32};
        epoll_ctl(epoll, EPOLL_CTL_MOD, connection->fd, &event);
        tcp_send_calls(connection, deadline);
      } else {
        served += tcp_readable(connection, depth, deadline);
      }
    }
    if (opened < connection_count && connections[opened - 1].answered) {
      open_tcp(&connections[opened], opened, depth, server, epoll);
      opened++;
    }
    coalesce(served);
  }
  for (int i = 0; i < opened; i++) close(connections[i].fd);
}

/* ---------------------------------------------------------------- UDP */

struct rx_connection {
  uint32_t cid;
  uint32_t serial;
  uint32_t call_number[RX_CHANNELS];
  uint64_t sent_at[RX_CHANNELS];
  uint64_t last_sent[RX_CHANNELS];
};

/* A socket's packets to send, queued while its replies are taken and sent with one sendmmsg. */
struct rx_socket {
  int fd;
  int first_connection;
  int connection_count;
  int pending;
  uint8_t packets[RX_BATCH_MAX][RX_HEADER_BYTES + 4];
  struct iovec vectors[RX_BATCH_MAX];
  struct mmsghdr messages[RX_BATCH_MAX];
};

static uint32_t rx_epoch, rx_service_id, rx_first_cid;
static int rx_channels;
static struct rx_connection rx_connections[CONNECTIONS_MAX * RX_CONNECTIONS_PER_SOCKET_MAX];

static void rx_flush(struct rx_socket *socket_) {
  int sent = 0;
  while (sent < socket_->pending) {
    io_calls++;
    int count = sendmmsg(socket_->fd, socket_->messages + sent, (unsigned)(socket_->pending - sent), 0);
    /* A full socket buffer or an ICMP error surfacing drops the rest: the retransmit timer covers it. */
    if (count <= 0) {
      if (errno != EAGAIN && errno != ECONNREFUSED) die("sendmmsg");
      break;
    }
    sent += count;
  }
  socket_->pending = 0;
}

static void rx_queue(struct rx_socket *socket_, struct rx_connection *connection, int channel, uint8_t type, uint8_t flags) {
  if (socket_->pending == RX_BATCH_MAX) rx_flush(socket_);
  uint8_t *packet = socket_->packets[socket_->pending];
  memset(packet, 0, RX_HEADER_BYTES + 4);
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
  socket_->vectors[socket_->pending].iov_len = RX_HEADER_BYTES + (type == RX_DATA ? 4 : 0);
  socket_->pending++;
  connection->last_sent[channel] = now_ns();
}

static void rx_start_call(struct rx_socket *socket_, struct rx_connection *connection, int channel, uint64_t deadline) {
  uint64_t now = now_ns();
  if (now >= deadline) return;
  connection->call_number[channel]++;
  connection->sent_at[channel] = now;
  rx_queue(socket_, connection, channel, RX_DATA, RX_CLIENT_INITIATED | RX_LAST_PACKET);
}

/* One received packet: a reply (or refusal) ends its call and starts the channel's next one; returns 1 if it ended a call. */
static int rx_take_packet(struct rx_socket *socket_, const uint8_t *packet, size_t length, uint64_t received, uint64_t deadline) {
  if (length < RX_HEADER_BYTES || (packet[21] & RX_CLIENT_INITIATED)) return 0;
  uint32_t cid = get32(packet + 4);
  uint32_t index = ((cid & ~(uint32_t)(RX_CHANNELS - 1)) - rx_first_cid) / RX_CHANNELS;
  if (index < (uint32_t)socket_->first_connection || index >= (uint32_t)(socket_->first_connection + socket_->connection_count)) return 0;
  struct rx_connection *connection = &rx_connections[index];
  int channel = (int)(cid & (RX_CHANNELS - 1));
  uint8_t type = packet[20];
  if (get32(packet + 8) != connection->call_number[channel] || connection->sent_at[channel] == 0) return 0;
  if (type == RX_DATA && (packet[21] & RX_LAST_PACKET)) {
    record_reply(connection->sent_at[channel], received, 0);
  } else if (type == RX_ABORT || type == RX_BUSY) {
    record_reply(connection->sent_at[channel], received, 1);
  } else {
    return 0; /* ACKs of our request: the reply is what we wait for */
  }
  connection->sent_at[channel] = 0;
  rx_start_call(socket_, connection, channel, deadline);
  return 1;
}

/* Takes every datagram queued on the socket, RX_BATCH_MAX per recvmmsg, then sends the calls they freed; returns the calls ended. */
static int rx_readable(struct rx_socket *socket_, uint64_t deadline) {
  static uint8_t buffers[RX_BATCH_MAX][RX_PACKET_BYTES];
  static struct iovec vectors[RX_BATCH_MAX];
  static struct mmsghdr messages[RX_BATCH_MAX];
  static int prepared;
  /* Once: recvmmsg only writes msg_len and msg_flags back (no source address is asked for). */
  for (int i = 0; !prepared && i < RX_BATCH_MAX; i++) {
    vectors[i] = (struct iovec){.iov_base = buffers[i], .iov_len = RX_PACKET_BYTES};
    messages[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &vectors[i], .msg_iovlen = 1}};
  }
  prepared = 1;
  int ended = 0;
  for (;;) {
    io_calls++;
    int count = recvmmsg(socket_->fd, messages, RX_BATCH_MAX, MSG_DONTWAIT, NULL);
    if (count <= 0) break; /* EAGAIN, or an ICMP error surfacing: the retransmit timer covers it */
    uint64_t received = now_ns();
    for (int i = 0; i < count; i++) ended += rx_take_packet(socket_, buffers[i], messages[i].msg_len, received, deadline);
    if (count < RX_BATCH_MAX) break;
  }
  rx_flush(socket_);
  return ended;
}

static void rx_retransmit_late(struct rx_socket *sockets, int socket_count) {
  uint64_t now = now_ns();
  for (int s = 0; s < socket_count; s++) {
    for (int i = sockets[s].first_connection; i < sockets[s].first_connection + sockets[s].connection_count; i++) {
      for (int channel = 0; channel < rx_channels; channel++) {
        struct rx_connection *connection = &rx_connections[i];
        if (connection->sent_at[channel] == 0 || now - connection->last_sent[channel] < RX_RETRANSMIT_NS) continue;
        retransmits++;
        rx_queue(&sockets[s], connection, channel, RX_DATA, RX_CLIENT_INITIATED | RX_LAST_PACKET);
      }
    }
    rx_flush(&sockets[s]);
  }
}

static void open_rx_socket(struct rx_socket *socket_, int index, int per_socket, const struct sockaddr_in *server, int epoll) {
  socket_->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (socket_->fd < 0) die("socket");
  if (connect(socket_->fd, (const struct sockaddr *)server, sizeof *server) < 0) die("connect");
  socket_->first_connection = index * per_socket;
  socket_->connection_count = per_socket;
  for (int i = 0; i < RX_BATCH_MAX; i++) {
    socket_->vectors[i] = (struct iovec){.iov_base = socket_->packets[i], .iov_len = 0};
    socket_->messages[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &socket_->vectors[i], .msg_iovlen = 1}};
  }
  struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
  if (epoll_ctl(epoll, EPOLL_CTL_ADD, socket_->fd, &event) < 0) die("epoll_ctl");
}

static void run_udp(const struct sockaddr_in *server, int socket_count, int depth, uint64_t deadline, int epoll) {
  static struct rx_socket sockets[CONNECTIONS_MAX];
  rx_channels = depth < RX_CHANNELS ? depth : RX_CHANNELS;
  int per_socket = (depth + RX_CHANNELS - 1) / RX_CHANNELS;
  rx_epoch = (uint32_t)time(NULL) & 0x7fffffff; /* top bit clear: the server matches on our address too */
  rx_first_cid = ((uint32_t)getpid() << 18) & 0x3ffffffc; /* room below for CONNECTIONS_MAX x 64 connections */
  for (int s = 0; s < socket_count; s++) {
    open_rx_socket(&sockets[s], s, per_socket, server, epoll);
    for (int i = sockets[s].first_connection; i < sockets[s].first_connection + per_socket; i++) {
      rx_connections[i].cid = rx_first_cid + RX_CHANNELS * (uint32_t)i;
      for (int channel = 0; channel < rx_channels; channel++) rx_start_call(&sockets[s], &rx_connections[i], channel, deadline);
    }
    rx_flush(&sockets[s]);
  }
  struct epoll_event events[EPOLL_EVENTS_MAX];
  uint64_t next_sweep = now_ns() + RX_RETRANSMIT_NS;
  while (now_ns() < deadline) {
    int ready = epoll_wait(epoll, events, EPOLL_EVENTS_MAX, 10);
    int served = 0;
    if (ready > 0) wakeups++;
    for (int i = 0; i < ready; i++) served += rx_readable(&sockets[events[i].data.u32], deadline);
    if (now_ns() >= next_sweep) {
      rx_retransmit_late(sockets, socket_count);
      next_sweep = now_ns() + RX_RETRANSMIT_NS / 4;
    }
    coalesce(served);
  }
  /* ACKALL the last reply of every channel, so the server does not retransmit into a closed port. */
  for (int s = 0; s < socket_count; s++) {
    for (int i = sockets[s].first_connection; i < sockets[s].first_connection + per_socket; i++) {
      for (int channel = 0; channel < rx_channels; channel++) rx_queue(&sockets[s], &rx_connections[i], channel, RX_ACKALL, RX_CLIENT_INITIATED);
    }
    rx_flush(&sockets[s]);
    close(sockets[s].fd);
  }
}

static int usage(const char *program) {
  fprintf(stderr, "usage: %s [-b BATCH] [-w WAIT_US] tcp|udp HOST PORT CONNECTIONS DEPTH DURATION_MS (PROGRAM VERSION | SERVICE_ID)\n", program);
  return 2;
}

int main(int argc, char **argv) {
  int option;
  while ((option = getopt(argc, argv, "b:w:")) != -1) {
    if (option == 'b') batch = atoi(optarg);
    else if (option == 'w') wait_us = atol(optarg);
    else return usage(argv[0]);
  }
  argv += optind - 1;
  argc -= optind - 1;
  if (argc < 8) return usage(argv[0]);
  int tcp = strcmp(argv[1], "tcp") == 0;
  struct sockaddr_in server = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  if (inet_pton(AF_INET, argv[2], &server.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", argv[2]); return 2; }
  int connection_count = atoi(argv[4]), depth = atoi(argv[5]);
  long duration_ms = atol(argv[6]);
  if (connection_count < 1 || connection_count > CONNECTIONS_MAX || depth < 1 || depth > DEPTH_MAX || duration_ms < 1 || batch < 1 || wait_us < 0 || wait_us > WAIT_US_MAX) {
    fprintf(stderr, "connections must be in [1, %d], depth in [1, %d], duration > 0, batch >= 1, wait in [0, %d] µs\n", CONNECTIONS_MAX, DEPTH_MAX, WAIT_US_MAX);
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
  printf("{\"calls\":%llu,\"errors\":%llu,\"retransmits\":%llu,\"elapsedMs\":%ld,\"p50Ms\":%.3f,\"p99Ms\":%.3f,\"cpuMs\":%.1f,\"ioCalls\":%llu,\"wakeups\":%llu}\n",
         (unsigned long long)calls, (unsigned long long)errors, (unsigned long long)retransmits, duration_ms, percentile_ms(0.5), percentile_ms(0.99), cpu_ms,
         (unsigned long long)io_calls, (unsigned long long)wakeups);
  return 0;
}
