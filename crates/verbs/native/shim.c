/*
 * See shim.h. Every call returns an errno on failure: rdma-core reports
 * errors either as a return value or through errno depending on the call,
 * and the Rust side wants one convention.
 */
#include "shim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

static int errno_or(int fallback)
{
	return errno ? errno : fallback;
}

const char *roce_context_name(struct ibv_context *context)
{
	return ibv_get_device_name(context->device);
}

int roce_query_device(struct ibv_context *context, struct roce_device_attributes *out)
{
	struct ibv_device_attr device;
	struct ibv_port_attr port;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = ibv_query_device(context, &device);
	if (rc)
		return rc;
	rc = ibv_query_port(context, 1, &port);
	if (rc)
		return rc;
	snprintf(out->name, sizeof(out->name), "%s", ibv_get_device_name(context->device));
	snprintf(out->firmware_version, sizeof(out->firmware_version), "%s", device.fw_ver);
	out->node_guid = be64toh(device.node_guid);
	out->max_mr_size = device.max_mr_size;
	out->max_qp = device.max_qp;
	out->max_qp_wr = device.max_qp_wr;
	out->max_sge = device.max_sge;
	out->max_cq = device.max_cq;
	out->max_cqe = device.max_cqe;
	out->max_mr = device.max_mr;
	out->max_pd = device.max_pd;
	out->max_qp_rd_atom = device.max_qp_rd_atom;
	out->max_qp_init_rd_atom = device.max_qp_init_rd_atom;
	out->physical_port_count = device.phys_port_cnt;
	out->port_state = port.state;
	out->active_mtu = port.active_mtu;
	out->link_layer = port.link_layer;
	out->gid_table_len = port.gid_tbl_len;
	return 0;
}

int roce_reg_mr(struct ibv_pd *pd, void *address, size_t length, int access, struct ibv_mr **out)
{
	errno = 0;
	*out = ibv_reg_mr(pd, address, length, access);
	return *out ? 0 : errno_or(EINVAL);
}

uint32_t roce_mr_lkey(const struct ibv_mr *mr) { return mr->lkey; }
uint32_t roce_mr_rkey(const struct ibv_mr *mr) { return mr->rkey; }

int roce_create_cq(struct ibv_context *context, int depth, struct ibv_comp_channel *channel,
		   struct ibv_cq **out)
{
	errno = 0;
	*out = ibv_create_cq(context, depth, NULL, channel, 0);
	return *out ? 0 : errno_or(ENOMEM);
}

int roce_comp_channel_fd(const struct ibv_comp_channel *channel) { return channel->fd; }

int roce_poll_cq(struct ibv_cq *cq, int max, struct roce_completion *out)
{
	struct ibv_wc wc[32];
	int total = 0;

	while (total < max) {
		int want = max - total < 32 ? max - total : 32;
		int n = ibv_poll_cq(cq, want, wc);
		if (n < 0)
			return -errno_or(EIO);
		for (int i = 0; i < n; i++) {
			struct roce_completion *c = &out[total + i];
			c->wr_id_low = (uint32_t)wc[i].wr_id;
			c->wr_id_high = (uint32_t)(wc[i].wr_id >> 32);
			c->status = wc[i].status;
			c->opcode = wc[i].opcode;
			c->byte_len = wc[i].byte_len;
			c->imm_data = (wc[i].wc_flags & IBV_WC_WITH_IMM) ? ntohl(wc[i].imm_data) : 0;
			c->qp_num = wc[i].qp_num;
			c->vendor_err = wc[i].vendor_err;
			c->wc_flags = wc[i].wc_flags;
			c->reserved = 0;
		}
		total += n;
		if (n < want)
			break;
	}
	return total;
}

int roce_req_notify_cq(struct ibv_cq *cq) { return ibv_req_notify_cq(cq, 0); }

int roce_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_cq *send_cq,
		   struct ibv_cq *recv_cq, struct roce_qp_capabilities *capabilities)
{
	struct ibv_qp_init_attr attributes;

	memset(&attributes, 0, sizeof(attributes));
	attributes.send_cq = send_cq;
	attributes.recv_cq = recv_cq;
	attributes.qp_type = IBV_QPT_RC;
	attributes.cap.max_send_wr = capabilities->max_send_wr;
	attributes.cap.max_recv_wr = capabilities->max_recv_wr;
	attributes.cap.max_send_sge = capabilities->max_send_sge;
	attributes.cap.max_recv_sge = capabilities->max_recv_sge;
	attributes.cap.max_inline_data = capabilities->max_inline_data;
	errno = 0;
	if (rdma_create_qp(id, pd, &attributes))
		return errno_or(EINVAL);
	capabilities->max_send_wr = attributes.cap.max_send_wr;
	capabilities->max_recv_wr = attributes.cap.max_recv_wr;
	capabilities->max_send_sge = attributes.cap.max_send_sge;
	capabilities->max_recv_sge = attributes.cap.max_recv_sge;
	capabilities->max_inline_data = attributes.cap.max_inline_data;
	return 0;
}

uint32_t roce_qp_num(const struct rdma_cm_id *id) { return id->qp ? id->qp->qp_num : 0; }
int roce_qp_has(const struct rdma_cm_id *id) { return id->qp != NULL; }

int roce_qp_to_error(struct rdma_cm_id *id)
{
	struct ibv_qp_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.qp_state = IBV_QPS_ERR;
	return ibv_modify_qp(id->qp, &attr, IBV_QP_STATE);
}

int roce_post_send(struct rdma_cm_id *id, uint64_t wr_id, uint32_t opcode,
		   const struct ibv_sge *sges, int sge_count, uint32_t send_flags,
		   uint64_t remote_address, uint32_t rkey, uint32_t imm_data_host_order)
{
	struct ibv_send_wr wr, *bad = NULL;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = wr_id;
	wr.opcode = opcode;
	wr.sg_list = (struct ibv_sge *)sges;
	wr.num_sge = sge_count;
	wr.send_flags = send_flags;
	wr.imm_data = htonl(imm_data_host_order);
	wr.wr.rdma.remote_addr = remote_address;
	wr.wr.rdma.rkey = rkey;
	return ibv_post_send(id->qp, &wr, &bad);
}

int roce_post_send_chain(struct rdma_cm_id *id, const uint64_t *wr_ids, const struct ibv_sge *sges,
			 int count, uint32_t opcode, uint32_t send_flags, int *posted)
{
	struct ibv_send_wr wrs[ROCE_POST_CHAIN_MAX], *bad = NULL;
	int index, status;

	*posted = 0;
	if (count < 1 || count > ROCE_POST_CHAIN_MAX)
		return EINVAL;
	memset(wrs, 0, sizeof(wrs[0]) * count);
	for (index = 0; index < count; index++) {
		wrs[index].wr_id = wr_ids[index];
		wrs[index].opcode = opcode;
		wrs[index].sg_list = (struct ibv_sge *)&sges[index];
		wrs[index].num_sge = 1;
		wrs[index].send_flags = send_flags;
		wrs[index].next = index + 1 < count ? &wrs[index + 1] : NULL;
	}
	status = ibv_post_send(id->qp, wrs, &bad);
	*posted = status == 0 ? count : (bad == NULL ? 0 : (int)(bad - wrs));
	return status;
}

int roce_post_recv(struct rdma_cm_id *id, uint64_t wr_id, const struct ibv_sge *sges, int sge_count)
{
	struct ibv_recv_wr wr, *bad = NULL;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = wr_id;
	wr.sg_list = (struct ibv_sge *)sges;
	wr.num_sge = sge_count;
	return ibv_post_recv(id->qp, &wr, &bad);
}

struct ibv_context *roce_cm_id_verbs(const struct rdma_cm_id *id) { return id->verbs; }
void roce_cm_id_set_context(struct rdma_cm_id *id, uint64_t context)
{
	id->context = (void *)(uintptr_t)context;
}

int roce_event_channel_fd(const struct rdma_event_channel *channel) { return channel->fd; }

static int address_from_text(const char *host, uint16_t port, struct sockaddr_storage *out)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		return 0;
	}
	return EINVAL;
}

int roce_bind(struct rdma_cm_id *id, const char *host, uint16_t port)
{
	struct sockaddr_storage address;
	int rc = address_from_text(host, port, &address);

	if (rc)
		return rc;
	errno = 0;
	return rdma_bind_addr(id, (struct sockaddr *)&address) ? errno_or(EINVAL) : 0;
}

int roce_resolve_address(struct rdma_cm_id *id, const char *host, uint16_t port, int timeout_ms)
{
	struct sockaddr_storage address;
	int rc = address_from_text(host, port, &address);

	if (rc)
		return rc;
	errno = 0;
	return rdma_resolve_addr(id, NULL, (struct sockaddr *)&address, timeout_ms) ? errno_or(EINVAL) : 0;
}

static int address_to_text(const struct sockaddr *address, struct roce_address *out)
{
	memset(out, 0, sizeof(*out));
	if (address->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)address;
		inet_ntop(AF_INET, &v4->sin_addr, out->host, sizeof(out->host));
		out->port = ntohs(v4->sin_port);
		return 0;
	}
	if (address->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)address;
		inet_ntop(AF_INET6, &v6->sin6_addr, out->host, sizeof(out->host));
		out->port = ntohs(v6->sin6_port);
		return 0;
	}
	return EAFNOSUPPORT;
}

int roce_local_address(struct rdma_cm_id *id, struct roce_address *out)
{
	return address_to_text(rdma_get_local_addr(id), out);
}

int roce_peer_address(struct rdma_cm_id *id, struct roce_address *out)
{
	return address_to_text(rdma_get_peer_addr(id), out);
}

static void conn_param_from(const struct roce_connection_parameters *in, struct rdma_conn_param *out)
{
	memset(out, 0, sizeof(*out));
	out->private_data = in->private_data_len ? in->private_data : NULL;
	out->private_data_len = in->private_data_len;
	out->responder_resources = in->responder_resources;
	out->initiator_depth = in->initiator_depth;
	out->retry_count = in->retry_count;
	out->rnr_retry_count = in->rnr_retry_count;
}

int roce_connect(struct rdma_cm_id *id, const struct roce_connection_parameters *parameters)
{
	struct rdma_conn_param param;

	conn_param_from(parameters, &param);
	errno = 0;
	return rdma_connect(id, &param) ? errno_or(EINVAL) : 0;
}

int roce_accept(struct rdma_cm_id *id, const struct roce_connection_parameters *parameters)
{
	struct rdma_conn_param param;

	conn_param_from(parameters, &param);
	errno = 0;
	return rdma_accept(id, &param) ? errno_or(EINVAL) : 0;
}

int roce_get_cm_event(struct rdma_event_channel *channel, struct roce_cm_event *out)
{
	struct rdma_cm_event *event;
	const struct rdma_conn_param *conn;

	errno = 0;
	if (rdma_get_cm_event(channel, &event))
		return errno_or(EIO);
	memset(out, 0, sizeof(*out));
	out->type = event->event;
	out->status = event->status;
	out->id = event->id;
	out->listen_id = event->listen_id;
	out->id_context = (uint64_t)(uintptr_t)event->id->context;
	out->listen_context = event->listen_id ? (uint64_t)(uintptr_t)event->listen_id->context : 0;
	conn = &event->param.conn;
	if (event->event == RDMA_CM_EVENT_CONNECT_REQUEST || event->event == RDMA_CM_EVENT_ESTABLISHED ||
	    event->event == RDMA_CM_EVENT_REJECTED) {
		out->parameters.responder_resources = conn->responder_resources;
		out->parameters.initiator_depth = conn->initiator_depth;
		out->parameters.retry_count = conn->retry_count;
		out->parameters.rnr_retry_count = conn->rnr_retry_count;
		if (conn->private_data && conn->private_data_len) {
			out->parameters.private_data_len = conn->private_data_len;
			memcpy(out->parameters.private_data, conn->private_data, conn->private_data_len);
		}
	}
	rdma_ack_cm_event(event);
	return 0;
}
