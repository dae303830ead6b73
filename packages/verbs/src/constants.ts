/**
 * Every verbs and rdma_cm constant the package speaks, in one place: the
 * numbers rdma-core uses on the native side and the names JavaScript sees.
 * Values are from <infiniband/verbs.h> and <rdma/rdma_cma.h>.
 */

/** `enum ibv_wc_status`, indexed by value. */
export const WC_STATUS_NAMES = [
  'IBV_WC_SUCCESS',
  'IBV_WC_LOC_LEN_ERR',
  'IBV_WC_LOC_QP_OP_ERR',
  'IBV_WC_LOC_EEC_OP_ERR',
  'IBV_WC_LOC_PROT_ERR',
  'IBV_WC_WR_FLUSH_ERR',
  'IBV_WC_MW_BIND_ERR',
  'IBV_WC_BAD_RESP_ERR',
  'IBV_WC_LOC_ACCESS_ERR',
  'IBV_WC_REM_INV_REQ_ERR',
  'IBV_WC_REM_ACCESS_ERR',
  'IBV_WC_REM_OP_ERR',
  'IBV_WC_RETRY_EXC_ERR',
  'IBV_WC_RNR_RETRY_EXC_ERR',
  'IBV_WC_LOC_RDD_VIOL_ERR',
  'IBV_WC_REM_INV_RD_REQ_ERR',
  'IBV_WC_REM_ABORT_ERR',
  'IBV_WC_INV_EECN_ERR',
  'IBV_WC_INV_EEC_STATE_ERR',
  'IBV_WC_FATAL_ERR',
  'IBV_WC_RESP_TIMEOUT_ERR',
  'IBV_WC_GENERAL_ERR',
  'IBV_WC_TM_ERR',
  'IBV_WC_TM_RNDV_INCOMPLETE',
] as const;

/** A work completion status name, e.g. `'IBV_WC_SUCCESS'`. */
export type WcStatus = (typeof WC_STATUS_NAMES)[number] | 'IBV_WC_UNKNOWN';

/** `enum ibv_wc_opcode` values we report. */
export const WC_OPCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'IBV_WC_SEND',
  1: 'IBV_WC_RDMA_WRITE',
  2: 'IBV_WC_RDMA_READ',
  3: 'IBV_WC_COMP_SWAP',
  4: 'IBV_WC_FETCH_ADD',
  5: 'IBV_WC_BIND_MW',
  6: 'IBV_WC_LOCAL_INV',
  128: 'IBV_WC_RECV',
  129: 'IBV_WC_RECV_RDMA_WITH_IMM',
};

/** A work completion opcode name, e.g. `'IBV_WC_RECV'`. */
export type WcOpcode =
  | 'IBV_WC_SEND'
  | 'IBV_WC_RDMA_WRITE'
  | 'IBV_WC_RDMA_READ'
  | 'IBV_WC_COMP_SWAP'
  | 'IBV_WC_FETCH_ADD'
  | 'IBV_WC_BIND_MW'
  | 'IBV_WC_LOCAL_INV'
  | 'IBV_WC_RECV'
  | 'IBV_WC_RECV_RDMA_WITH_IMM'
  | 'IBV_WC_UNKNOWN';

/** `IBV_WC_WITH_IMM` in `wc_flags`. */
export const WC_WITH_IMMEDIATE = 1 << 1;

/** `enum ibv_wr_opcode` values we post. */
export const WR_OPCODE = {
  RDMA_WRITE: 0,
  RDMA_WRITE_WITH_IMM: 1,
  SEND: 2,
  SEND_WITH_IMM: 3,
  RDMA_READ: 4,
} as const;

/** `enum ibv_send_flags`. */
export const SEND_FLAG = { FENCE: 1, SIGNALED: 2, SOLICITED: 4, INLINE: 8 } as const;

/** Access bits of a memory registration (same values as IBV_ACCESS_*). */
export const ACCESS_FLAG = { LOCAL_WRITE: 1, REMOTE_WRITE: 2, REMOTE_READ: 4 } as const;

/** `enum rdma_cm_event_type`, indexed by value. */
export const CM_EVENT_NAMES = [
  'RDMA_CM_EVENT_ADDR_RESOLVED',
  'RDMA_CM_EVENT_ADDR_ERROR',
  'RDMA_CM_EVENT_ROUTE_RESOLVED',
  'RDMA_CM_EVENT_ROUTE_ERROR',
  'RDMA_CM_EVENT_CONNECT_REQUEST',
  'RDMA_CM_EVENT_CONNECT_RESPONSE',
  'RDMA_CM_EVENT_CONNECT_ERROR',
  'RDMA_CM_EVENT_UNREACHABLE',
  'RDMA_CM_EVENT_REJECTED',
  'RDMA_CM_EVENT_ESTABLISHED',
  'RDMA_CM_EVENT_DISCONNECTED',
  'RDMA_CM_EVENT_DEVICE_REMOVAL',
  'RDMA_CM_EVENT_MULTICAST_JOIN',
  'RDMA_CM_EVENT_MULTICAST_ERROR',
  'RDMA_CM_EVENT_ADDR_CHANGE',
  'RDMA_CM_EVENT_TIMEWAIT_EXIT',
] as const;

/** An rdma_cm event name, e.g. `'RDMA_CM_EVENT_ESTABLISHED'`. */
export type CmEventType = (typeof CM_EVENT_NAMES)[number] | 'RDMA_CM_EVENT_UNKNOWN';

/** u32 words per completion record (native `struct roce_completion`). */
export const COMPLETION_WORDS = 10;

/** Most SGEs per work request (native SGE_PER_WORK_REQUEST_MAX). */
export const SGE_PER_WORK_REQUEST_MAX = 8;

/** `IB_CM_REJ_INVALID_SERVICE_ID`: the reject reason when no one listens. */
export const REJECT_REASON_INVALID_SERVICE_ID = 8;
/** `IB_CM_REJ_CONSUMER_DEFINED`: the reject reason of `rdma_reject`. */
export const REJECT_REASON_CONSUMER_DEFINED = 28;
