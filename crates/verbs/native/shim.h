/*
 * The C face of rdma-core that the Rust side calls.
 *
 * rdma-core implements the data path (ibv_post_send, ibv_post_recv,
 * ibv_poll_cq, ibv_req_notify_cq) and a few set-up calls (ibv_reg_mr,
 * ibv_query_port) as static inline functions or macros, which Rust cannot
 * call through FFI. This shim turns them into real functions and flattens the
 * structs we need into the small fixed layouts below, so the Rust side never
 * mirrors rdma-core's struct layouts by hand.
 *
 * Every function returns 0 or a positive errno unless documented otherwise.
 * Nothing here allocates, keeps state, or takes locks.
 */
#ifndef ROCE_VERBS_SHIM_H
#define ROCE_VERBS_SHIM_H

#include <stdint.h>
#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

/* One work completion, as delivered to JavaScript: ten 32-bit words. */
struct roce_completion {
	uint32_t wr_id_low;
	uint32_t wr_id_high;
	uint32_t status;     /* enum ibv_wc_status */
	uint32_t opcode;     /* enum ibv_wc_opcode */
	uint32_t byte_len;
	uint32_t imm_data;   /* host order; valid when wc_flags has IBV_WC_WITH_IMM */
	uint32_t qp_num;
	uint32_t vendor_err;
	uint32_t wc_flags;
	uint32_t reserved;
};

/* The device and port facts that JavaScript sees from Device.query(). */
struct roce_device_attributes {
	char name[IBV_SYSFS_NAME_MAX];
	char firmware_version[64];
	uint64_t node_guid;
	uint64_t max_mr_size;
	uint32_t max_qp;
	uint32_t max_qp_wr;
	uint32_t max_sge;
	uint32_t max_cq;
	uint32_t max_cqe;
	uint32_t max_mr;
	uint32_t max_pd;
	uint32_t max_qp_rd_atom;
	uint32_t max_qp_init_rd_atom;
	uint32_t physical_port_count;
	uint32_t port_state;   /* enum ibv_port_state of port 1 */
	uint32_t active_mtu;   /* enum ibv_mtu of port 1 */
	uint32_t link_layer;   /* IBV_LINK_LAYER_* of port 1 */
	uint32_t gid_table_len;
};

/* Queue pair capacities requested at creation; updated with what we got. */
struct roce_qp_capabilities {
	uint32_t max_send_wr;
	uint32_t max_recv_wr;
	uint32_t max_send_sge;
	uint32_t max_recv_sge;
	uint32_t max_inline_data;
};

/* The connection parameters of connect/accept and of a connect request. */
struct roce_connection_parameters {
	uint8_t responder_resources;
	uint8_t initiator_depth;
	uint8_t retry_count;
	uint8_t rnr_retry_count;
	uint8_t private_data_len;
	uint8_t private_data[255];
};

/* One rdma_cm event, copied out so the event can be acknowledged at once. */
struct roce_cm_event {
	uint32_t type;                 /* enum rdma_cm_event_type */
	int32_t status;
	struct rdma_cm_id *id;
	struct rdma_cm_id *listen_id;
	uint64_t id_context;
	uint64_t listen_context;
	struct roce_connection_parameters parameters;
};

/* A socket address as text: "a.b.c.d" or an IPv6 literal, and a port. */
struct roce_address {
	char host[64];
	uint16_t port;
};

const char *roce_context_name(struct ibv_context *context);
int roce_query_device(struct ibv_context *context, struct roce_device_attributes *out);
int roce_reg_mr(struct ibv_pd *pd, void *address, size_t length, int access, struct ibv_mr **out);
uint32_t roce_mr_lkey(const struct ibv_mr *mr);
uint32_t roce_mr_rkey(const struct ibv_mr *mr);

int roce_create_cq(struct ibv_context *context, int depth, struct ibv_comp_channel *channel,
		   struct ibv_cq **out);
int roce_comp_channel_fd(const struct ibv_comp_channel *channel);
/* Returns the number of completions written to out (0..max) or -errno. */
int roce_poll_cq(struct ibv_cq *cq, int max, struct roce_completion *out);
int roce_req_notify_cq(struct ibv_cq *cq);

int roce_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_cq *send_cq,
		   struct ibv_cq *recv_cq, struct roce_qp_capabilities *capabilities);
uint32_t roce_qp_num(const struct rdma_cm_id *id);
int roce_qp_has(const struct rdma_cm_id *id);
/* Moves the QP to IBV_QPS_ERR: posted work requests are flushed. */
int roce_qp_to_error(struct rdma_cm_id *id);
int roce_post_send(struct rdma_cm_id *id, uint64_t wr_id, uint32_t opcode,
		   const struct ibv_sge *sges, int sge_count, uint32_t send_flags,
		   uint64_t remote_address, uint32_t rkey, uint32_t imm_data_host_order);
/* Most work requests one roce_post_send_chain posts (its array is on the stack). */
#define ROCE_POST_CHAIN_MAX 64

/* `count` work requests of one opcode and flags, one SGE each, chained in one
 * ibv_post_send (one doorbell); *posted is how many the provider took. */
int roce_post_send_chain(struct rdma_cm_id *id, const uint64_t *wr_ids, const struct ibv_sge *sges,
			 int count, uint32_t opcode, uint32_t send_flags, int *posted);
int roce_post_recv(struct rdma_cm_id *id, uint64_t wr_id, const struct ibv_sge *sges, int sge_count);

struct ibv_context *roce_cm_id_verbs(const struct rdma_cm_id *id);
void roce_cm_id_set_context(struct rdma_cm_id *id, uint64_t context);
int roce_event_channel_fd(const struct rdma_event_channel *channel);
int roce_bind(struct rdma_cm_id *id, const char *host, uint16_t port);
int roce_resolve_address(struct rdma_cm_id *id, const char *host, uint16_t port, int timeout_ms);
int roce_local_address(struct rdma_cm_id *id, struct roce_address *out);
int roce_peer_address(struct rdma_cm_id *id, struct roce_address *out);
int roce_connect(struct rdma_cm_id *id, const struct roce_connection_parameters *parameters);
int roce_accept(struct rdma_cm_id *id, const struct roce_connection_parameters *parameters);
/* Gets the next event without blocking (EAGAIN if none), copies and acks it. */
int roce_get_cm_event(struct rdma_event_channel *channel, struct roce_cm_event *out);

#endif
