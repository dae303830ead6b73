//! Raw FFI: librdmacm and libibverbs functions that are real symbols, and the
//! C shim (native/shim.c) for the static-inline ones. The shim's structs are
//! mirrored here with `#[repr(C)]`; rdma-core's own structs stay opaque.
#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_int, c_void};

macro_rules! opaque {
    ($($name:ident),*) => {$(
        /// Opaque rdma-core object.
        #[repr(C)]
        pub struct $name { _private: [u8; 0] }
    )*};
}
opaque!(ibv_context, ibv_pd, ibv_mr, ibv_cq, ibv_comp_channel, rdma_cm_id, rdma_event_channel);

/// `struct ibv_sge`: one scatter/gather element.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ibv_sge {
    pub addr: u64,
    pub length: u32,
    pub lkey: u32,
}

/// `struct roce_completion` (shim.h): one work completion, ten u32 words.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct roce_completion {
    pub wr_id_low: u32,
    pub wr_id_high: u32,
    pub status: u32,
    pub opcode: u32,
    pub byte_len: u32,
    pub imm_data: u32,
    pub qp_num: u32,
    pub vendor_err: u32,
    pub wc_flags: u32,
    pub reserved: u32,
}

/// u32 words per completion record handed to JavaScript.
pub const COMPLETION_WORDS: usize = 10;
const _: () = assert!(std::mem::size_of::<roce_completion>() == COMPLETION_WORDS * 4);

impl roce_completion {
    /// The 64-bit work request id.
    pub fn wr_id(&self) -> u64 {
        (self.wr_id_high as u64) << 32 | self.wr_id_low as u64
    }
}

/// `struct roce_device_attributes` (shim.h).
#[repr(C)]
pub struct roce_device_attributes {
    pub name: [c_char; 64],
    pub firmware_version: [c_char; 64],
    pub node_guid: u64,
    pub max_mr_size: u64,
    pub max_qp: u32,
    pub max_qp_wr: u32,
    pub max_sge: u32,
    pub max_cq: u32,
    pub max_cqe: u32,
    pub max_mr: u32,
    pub max_pd: u32,
    pub max_qp_rd_atom: u32,
    pub max_qp_init_rd_atom: u32,
    pub physical_port_count: u32,
    pub port_state: u32,
    pub active_mtu: u32,
    pub link_layer: u32,
    pub gid_table_len: u32,
}

/// `struct roce_qp_capabilities` (shim.h).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct roce_qp_capabilities {
    pub max_send_wr: u32,
    pub max_recv_wr: u32,
    pub max_send_sge: u32,
    pub max_recv_sge: u32,
    pub max_inline_data: u32,
}

/// Most work requests one `roce_post_send_chain` posts (shim.h's ROCE_POST_CHAIN_MAX).
pub const POST_CHAIN_MAX: usize = 64;

/// Most private data bytes a connection parameter block carries.
pub const PRIVATE_DATA_MAX: usize = 255;

/// `struct roce_connection_parameters` (shim.h).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct roce_connection_parameters {
    pub responder_resources: u8,
    pub initiator_depth: u8,
    pub retry_count: u8,
    pub rnr_retry_count: u8,
    pub private_data_len: u8,
    pub private_data: [u8; PRIVATE_DATA_MAX],
}

impl Default for roce_connection_parameters {
    fn default() -> Self {
        roce_connection_parameters {
            responder_resources: 0,
            initiator_depth: 0,
            retry_count: 0,
            rnr_retry_count: 0,
            private_data_len: 0,
            private_data: [0; PRIVATE_DATA_MAX],
        }
    }
}

/// `struct roce_cm_event` (shim.h).
#[repr(C)]
pub struct roce_cm_event {
    pub kind: u32,
    pub status: i32,
    pub id: *mut rdma_cm_id,
    pub listen_id: *mut rdma_cm_id,
    pub id_context: u64,
    pub listen_context: u64,
    pub parameters: roce_connection_parameters,
}

/// `struct roce_address` (shim.h).
#[repr(C)]
pub struct roce_address {
    pub host: [c_char; 64],
    pub port: u16,
}

/// `RDMA_PS_TCP`: reliable connected port space.
pub const RDMA_PS_TCP: c_int = 0x0106;
/// `enum rdma_cm_event_type` values we act on natively.
pub const RDMA_CM_EVENT_CONNECT_REQUEST: u32 = 4;

/// `enum ibv_access_flags`.
pub const IBV_ACCESS_LOCAL_WRITE: c_int = 1;
pub const IBV_ACCESS_REMOTE_WRITE: c_int = 1 << 1;
pub const IBV_ACCESS_REMOTE_READ: c_int = 1 << 2;

/// `enum ibv_wr_opcode`.
pub const IBV_WR_RDMA_WRITE: u32 = 0;
pub const IBV_WR_RDMA_WRITE_WITH_IMM: u32 = 1;
pub const IBV_WR_SEND: u32 = 2;
pub const IBV_WR_SEND_WITH_IMM: u32 = 3;
pub const IBV_WR_RDMA_READ: u32 = 4;

/// `enum ibv_send_flags`.
pub const IBV_SEND_FENCE: u32 = 1;
pub const IBV_SEND_SIGNALED: u32 = 1 << 1;
pub const IBV_SEND_SOLICITED: u32 = 1 << 2;
pub const IBV_SEND_INLINE: u32 = 1 << 3;

/// `enum ibv_wc_opcode` / `ibv_wc_status` values we act on natively.
pub const IBV_WC_SUCCESS: u32 = 0;
pub const IBV_WC_SEND: u32 = 0;
pub const IBV_WC_RECV: u32 = 1 << 7;
pub const IBV_WC_WR_FLUSH_ERR: u32 = 5;

#[link(name = "ibverbs")]
extern "C" {
    pub fn ibv_alloc_pd(context: *mut ibv_context) -> *mut ibv_pd;
    pub fn ibv_dealloc_pd(pd: *mut ibv_pd) -> c_int;
    pub fn ibv_dereg_mr(mr: *mut ibv_mr) -> c_int;
    pub fn ibv_create_comp_channel(context: *mut ibv_context) -> *mut ibv_comp_channel;
    pub fn ibv_destroy_comp_channel(channel: *mut ibv_comp_channel) -> c_int;
    pub fn ibv_destroy_cq(cq: *mut ibv_cq) -> c_int;
    pub fn ibv_get_cq_event(channel: *mut ibv_comp_channel, cq: *mut *mut ibv_cq, context: *mut *mut c_void) -> c_int;
    pub fn ibv_ack_cq_events(cq: *mut ibv_cq, count: u32);
}

#[link(name = "rdmacm")]
extern "C" {
    pub fn rdma_get_devices(count: *mut c_int) -> *mut *mut ibv_context;
    pub fn rdma_free_devices(list: *mut *mut ibv_context);
    pub fn rdma_create_event_channel() -> *mut rdma_event_channel;
    pub fn rdma_destroy_event_channel(channel: *mut rdma_event_channel);
    pub fn rdma_create_id(channel: *mut rdma_event_channel, id: *mut *mut rdma_cm_id, context: *mut c_void, port_space: c_int) -> c_int;
    pub fn rdma_destroy_id(id: *mut rdma_cm_id) -> c_int;
    pub fn rdma_listen(id: *mut rdma_cm_id, backlog: c_int) -> c_int;
    pub fn rdma_resolve_route(id: *mut rdma_cm_id, timeout_ms: c_int) -> c_int;
    pub fn rdma_reject(id: *mut rdma_cm_id, private_data: *const c_void, private_data_len: u8) -> c_int;
    pub fn rdma_disconnect(id: *mut rdma_cm_id) -> c_int;
    pub fn rdma_destroy_qp(id: *mut rdma_cm_id);
}

extern "C" {
    pub fn roce_context_name(context: *mut ibv_context) -> *const c_char;
    pub fn roce_query_device(context: *mut ibv_context, out: *mut roce_device_attributes) -> c_int;
    pub fn roce_reg_mr(pd: *mut ibv_pd, address: *mut c_void, length: usize, access: c_int, out: *mut *mut ibv_mr) -> c_int;
    pub fn roce_mr_lkey(mr: *const ibv_mr) -> u32;
    pub fn roce_mr_rkey(mr: *const ibv_mr) -> u32;
    pub fn roce_create_cq(context: *mut ibv_context, depth: c_int, channel: *mut ibv_comp_channel, out: *mut *mut ibv_cq) -> c_int;
    pub fn roce_comp_channel_fd(channel: *const ibv_comp_channel) -> c_int;
    pub fn roce_poll_cq(cq: *mut ibv_cq, max: c_int, out: *mut roce_completion) -> c_int;
    pub fn roce_req_notify_cq(cq: *mut ibv_cq) -> c_int;
    pub fn roce_create_qp(
        id: *mut rdma_cm_id,
        pd: *mut ibv_pd,
        send_cq: *mut ibv_cq,
        recv_cq: *mut ibv_cq,
        capabilities: *mut roce_qp_capabilities,
    ) -> c_int;
    pub fn roce_qp_num(id: *const rdma_cm_id) -> u32;
    pub fn roce_post_send(
        id: *mut rdma_cm_id,
        wr_id: u64,
        opcode: u32,
        sges: *const ibv_sge,
        sge_count: c_int,
        send_flags: u32,
        remote_address: u64,
        rkey: u32,
        imm_data_host_order: u32,
    ) -> c_int;
    pub fn roce_post_send_chain(id: *mut rdma_cm_id, wr_ids: *const u64, sges: *const ibv_sge, count: c_int, opcode: u32, send_flags: u32, posted: *mut c_int) -> c_int;
    pub fn roce_post_recv(id: *mut rdma_cm_id, wr_id: u64, sges: *const ibv_sge, sge_count: c_int) -> c_int;
    pub fn roce_qp_to_error(id: *mut rdma_cm_id) -> c_int;
    pub fn roce_cm_id_verbs(id: *const rdma_cm_id) -> *mut ibv_context;
    pub fn roce_cm_id_set_context(id: *mut rdma_cm_id, context: u64);
    pub fn roce_event_channel_fd(channel: *const rdma_event_channel) -> c_int;
    pub fn roce_bind(id: *mut rdma_cm_id, host: *const c_char, port: u16) -> c_int;
    pub fn roce_resolve_address(id: *mut rdma_cm_id, host: *const c_char, port: u16, timeout_ms: c_int) -> c_int;
    pub fn roce_local_address(id: *mut rdma_cm_id, out: *mut roce_address) -> c_int;
    pub fn roce_peer_address(id: *mut rdma_cm_id, out: *mut roce_address) -> c_int;
    pub fn roce_connect(id: *mut rdma_cm_id, parameters: *const roce_connection_parameters) -> c_int;
    pub fn roce_accept(id: *mut rdma_cm_id, parameters: *const roce_connection_parameters) -> c_int;
    pub fn roce_get_cm_event(channel: *mut rdma_event_channel, out: *mut roce_cm_event) -> c_int;
}

/// The errno of the last failed libc/rdma-core call on this thread.
pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}
