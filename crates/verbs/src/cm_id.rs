//! A connection id (rdma_cm_id) and the queue pair that lives on it.
//!
//! Life: created by JavaScript on an event channel (for listening or
//! connecting), or born from a connect request and adopted by JavaScript
//! (`CmId::adopt`). Owned by its JavaScript handle; queue pair handles share
//! it through an `Arc`. `close()` destroys the QP and the id at once, so
//! later use through any handle fails with ERR_VERBS_CLOSED; Drop does the
//! same if JavaScript forgets. Holds its event channel alive (an rdma_cm
//! rule: ids go before their channel). Touched on the JavaScript thread;
//! the state sits behind a mutex so the type stays honest if that changes.

use crate::completion_queue::CompletionQueue;
use crate::device::Device;
use crate::error::{check, Result, VerbsError};
use crate::event_channel::EventChannel;
use crate::memory_region::MemoryRegion;
use crate::protection_domain::ProtectionDomain;
use crate::bounded_queue::Waker;
use crate::queue_pair_drain::{QueuePairDrain, RECEIVE_MARKER_WR_ID, SEND_MARKER_WR_ID};
use crate::send_queue_account::SendQueueAccount;
use crate::sys;
use std::ffi::{CStr, CString};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Most SGEs in one work request: enough for an RPC header plus a few
/// pages, and small enough that a post never allocates.
pub const SGE_PER_WORK_REQUEST_MAX: usize = 8;
/// Work requests each queue keeps for `drain`'s marker.
const DRAIN_MARKERS_PER_QUEUE: u32 = 1;
/// Longest any address or route resolution may take.
pub const RESOLVE_TIMEOUT_MS_MAX: u32 = 60_000;

/// The resources a queue pair holds alive while it exists.
struct QueuePairLinks {
    pd: Arc<ProtectionDomain>,
    send_cq: Arc<CompletionQueue>,
    recv_cq: Arc<CompletionQueue>,
    capabilities: sys::roce_qp_capabilities,
    number: u32,
    /// None when the Send CQ already accounts another QP.
    account: Option<Arc<SendQueueAccount>>,
}

struct Live {
    raw: *mut sys::rdma_cm_id,
    queue_pair: Option<QueuePairLinks>,
    /// Held so the channel outlives the id (an rdma_cm rule), and let go
    /// as soon as the id is destroyed, so the channel's thread can stop.
    _channel: Arc<EventChannel>,
}

/// A connection id with its optional queue pair.
pub struct CmId {
    /// Written (exclusively) by everything that changes or tears down the
    /// id; read by posts, so that threads posting to one QP at once do not
    /// wait for each other: an rxe post_send runs the whole loopback send
    /// path in its system call, and two worker threads serving one
    /// connection waited on each other's (a contended lock per RPC, 16
    /// outstanding NULL calls, svcrdma README). Concurrent posts to one QP
    /// are safe in libibverbs (the provider locks its queues).
    state: RwLock<Option<Live>>,
    token: u64,
}

// SAFETY: rdma_cm ids may be used from any thread; our state is behind a lock.
unsafe impl Send for CmId {}
// SAFETY: as above.
unsafe impl Sync for CmId {}

/// One Send-queue work request.
pub struct SendRequest<'a> {
    pub wr_id: u64,
    pub opcode: u32,
    pub flags: u32,
    pub sges: &'a [sys::ibv_sge],
    pub remote_address: u64,
    pub rkey: u32,
    pub immediate: u32,
}

/// A host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

fn c_string(text: &str, name: &str) -> Result<CString> {
    CString::new(text).map_err(|_| VerbsError::invalid(format!("{name} contains a NUL byte")))
}

impl CmId {
    /// A new id on `channel` (RDMA_PS_TCP, reliable connected).
    pub fn create(channel: &Arc<EventChannel>) -> Result<Arc<CmId>> {
        let token = channel.next_token();
        let mut raw = std::ptr::null_mut();
        // SAFETY: the channel is live; the context is an opaque token.
        let rc = unsafe { sys::rdma_create_id(channel.raw(), &mut raw, token as usize as *mut _, sys::RDMA_PS_TCP) };
        if rc != 0 {
            return Err(VerbsError::from_errno(sys::last_errno(), "rdma_create_id"));
        }
        Ok(Self::own(raw, channel, token))
    }

    /// Takes ownership of a connect request's id (already tokened).
    pub fn adopt(raw: *mut sys::rdma_cm_id, channel: &Arc<EventChannel>, token: u64) -> Arc<CmId> {
        assert!(!raw.is_null(), "adopting a null id");
        Self::own(raw, channel, token)
    }

    fn own(raw: *mut sys::rdma_cm_id, channel: &Arc<EventChannel>, token: u64) -> Arc<CmId> {
        Arc::new(CmId { state: RwLock::new(Some(Live { raw, queue_pair: None, _channel: channel.clone() })), token })
    }

    /// The token that names this id in its events.
    pub fn token(&self) -> u64 {
        self.token
    }

    fn live(&self) -> Result<(RwLockWriteGuard<'_, Option<Live>>, *mut sys::rdma_cm_id)> {
        let guard = self.state.write().expect("cm id lock poisoned");
        let raw = guard.as_ref().map(|live| live.raw).ok_or_else(|| VerbsError::closed("CmId"))?;
        Ok((guard, raw))
    }

    /// As `live`, shared with other posters (see `state`).
    fn live_for_posting(&self) -> Result<(RwLockReadGuard<'_, Option<Live>>, *mut sys::rdma_cm_id)> {
        let guard = self.state.read().expect("cm id lock poisoned");
        let raw = guard.as_ref().map(|live| live.raw).ok_or_else(|| VerbsError::closed("CmId"))?;
        Ok((guard, raw))
    }

    /// Binds to a local address (port 0: any).
    pub fn bind(&self, host: &str, port: u16) -> Result<()> {
        let host = c_string(host, "address")?;
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live while we hold the guard.
        check(unsafe { sys::roce_bind(raw, host.as_ptr(), port) }, format!("rdma_bind_addr {host:?}:{port}"))
    }

    /// Listens for connect requests (after `bind`).
    pub fn listen(&self, backlog: u32) -> Result<()> {
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live while we hold the guard.
        if unsafe { sys::rdma_listen(raw, backlog.min(i32::MAX as u32) as i32) } != 0 {
            return Err(VerbsError::from_errno(sys::last_errno(), "rdma_listen"));
        }
        Ok(())
    }

    /// Starts resolving a peer address; ADDR_RESOLVED or ADDR_ERROR follows.
    pub fn resolve_address(&self, host: &str, port: u16, timeout_ms: u32) -> Result<()> {
        let host_c = c_string(host, "address")?;
        let timeout = timeout_ms.min(RESOLVE_TIMEOUT_MS_MAX) as i32;
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live while we hold the guard.
        check(unsafe { sys::roce_resolve_address(raw, host_c.as_ptr(), port, timeout) }, format!("rdma_resolve_addr {host}:{port}"))
    }

    /// Starts resolving the route; ROUTE_RESOLVED or ROUTE_ERROR follows.
    pub fn resolve_route(&self, timeout_ms: u32) -> Result<()> {
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live while we hold the guard.
        if unsafe { sys::rdma_resolve_route(raw, timeout_ms.min(RESOLVE_TIMEOUT_MS_MAX) as i32) } != 0 {
            return Err(VerbsError::from_errno(sys::last_errno(), "rdma_resolve_route"));
        }
        Ok(())
    }

    /// The device the id is bound to (after resolution or for a request).
    pub fn device(&self) -> Result<Arc<Device>> {
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live while we hold the guard.
        let context = unsafe { sys::roce_cm_id_verbs(raw) };
        if context.is_null() {
            return Err(VerbsError::from_errno(libc::ENODEV, "the id is not bound to a device yet"));
        }
        Ok(Device::from_context(context))
    }

    /// Creates the id's RC queue pair; `capabilities` is updated with what
    /// the device granted.
    pub fn create_queue_pair(
        &self,
        pd: &Arc<ProtectionDomain>,
        send_cq: &Arc<CompletionQueue>,
        recv_cq: &Arc<CompletionQueue>,
        capabilities: &mut sys::roce_qp_capabilities,
    ) -> Result<u32> {
        if capabilities.max_send_sge as usize > SGE_PER_WORK_REQUEST_MAX || capabilities.max_recv_sge as usize > SGE_PER_WORK_REQUEST_MAX {
            return Err(VerbsError::invalid(format!("at most {SGE_PER_WORK_REQUEST_MAX} SGEs per work request")));
        }
        let (mut guard, raw) = self.live()?;
        let live = guard.as_mut().expect("live() checked");
        if live.queue_pair.is_some() {
            return Err(VerbsError::from_errno(libc::EEXIST, "this CmId already has a queue pair"));
        }
        // One more entry in each queue for drain's markers (ib_drain_qp's
        // rule: the caller leaves room for them), hidden from the caller.
        capabilities.max_send_wr += DRAIN_MARKERS_PER_QUEUE;
        capabilities.max_recv_wr += DRAIN_MARKERS_PER_QUEUE;
        // SAFETY: raw, the PD and both CQs are live; rdma-core checks that
        // they share the id's device (EINVAL otherwise).
        check(
            unsafe { sys::roce_create_qp(raw, pd.raw(), send_cq.raw(), recv_cq.raw(), capabilities) },
            "rdma_create_qp",
        )?;
        capabilities.max_send_wr -= DRAIN_MARKERS_PER_QUEUE;
        capabilities.max_recv_wr -= DRAIN_MARKERS_PER_QUEUE;
        // SAFETY: the QP was just created on raw.
        let number = unsafe { sys::roce_qp_num(raw) };
        let account = Arc::new(SendQueueAccount::new(number, capabilities.max_send_wr));
        let account = send_cq.attach_account(account.clone()).then_some(account);
        live.queue_pair = Some(QueuePairLinks {
            pd: pd.clone(),
            send_cq: send_cq.clone(),
            recv_cq: recv_cq.clone(),
            capabilities: *capabilities,
            number,
            account,
        });
        Ok(number)
    }

    /// The QP number, or ERR_VERBS_CLOSED if there is no QP.
    pub fn queue_pair_number(&self) -> Result<u32> {
        let (guard, _) = self.live()?;
        guard.as_ref().and_then(|live| live.queue_pair.as_ref()).map(|qp| qp.number).ok_or_else(|| VerbsError::closed("QueuePair"))
    }

    /// Drains the QP (ib_drain_qp): moves it to the error state, so every
    /// posted work request completes or is flushed, and posts a marker Send
    /// and a marker Receive behind them. `done` is called (on a completion
    /// or polling thread) once both markers were polled from the QP's CQs,
    /// i.e. every earlier completion was routed. The QP stays usable for
    /// nothing but close afterwards. EBUSY while a drain is in progress.
    pub fn drain(&self, done: Waker) -> Result<()> {
        let (guard, raw) = self.live()?;
        let links = guard.as_ref().and_then(|live| live.queue_pair.as_ref()).ok_or_else(|| VerbsError::closed("QueuePair"))?;
        let drain = QueuePairDrain::new(done);
        if !links.send_cq.markers().expect(links.number, SEND_MARKER_WR_ID, drain.clone()) {
            return Err(VerbsError::from_errno(libc::EBUSY, "this queue pair is already draining"));
        }
        links.recv_cq.markers().expect(links.number, RECEIVE_MARKER_WR_ID, drain);
        // The Receive marker goes first, and the move to error after it: rxe
        // (Linux 6.1) flushes the Receive Queue only when the QP enters the
        // error state, never for a Receive posted later (user-space posts
        // raise no doorbell), and a move to error from error flushes again.
        // The Send marker's post does ring the doorbell, so it flushes.
        // SAFETY: raw has a live QP; a zero-SGE work request reads no memory.
        let posted = check(unsafe { sys::roce_post_recv(raw, RECEIVE_MARKER_WR_ID, std::ptr::null(), 0) }, "ibv_post_recv(drain marker)")
            .and_then(|()| check(unsafe { sys::roce_qp_to_error(raw) }, "ibv_modify_qp(ERR)"))
            .and_then(|()| {
                check(
                    unsafe { sys::roce_post_send(raw, SEND_MARKER_WR_ID, sys::IBV_WR_SEND, std::ptr::null(), 0, sys::IBV_SEND_SIGNALED, 0, 0, 0) },
                    "ibv_post_send(drain marker)",
                )
            });
        if posted.is_err() {
            links.send_cq.markers().cancel(links.number);
            links.recv_cq.markers().cancel(links.number);
        }
        posted
    }

    /// Destroys the QP (the id stays). Idempotent.
    pub fn destroy_queue_pair(&self) {
        let mut guard = self.state.write().expect("cm id lock poisoned");
        if let Some(live) = guard.as_mut() {
            if live.queue_pair.take().is_some() {
                // SAFETY: the id has a QP, created by rdma_create_qp.
                unsafe { sys::rdma_destroy_qp(live.raw) };
            }
        }
    }

    /// Checks an SGE's region belongs to the QP's PD, then runs `post`.
    fn with_queue_pair<R>(
        &self,
        regions: &[Option<&MemoryRegion>],
        post: impl FnOnce(*mut sys::rdma_cm_id, &QueuePairLinks) -> Result<R>,
    ) -> Result<R> {
        let (guard, raw) = self.live_for_posting()?;
        let links = guard.as_ref().and_then(|live| live.queue_pair.as_ref()).ok_or_else(|| VerbsError::closed("QueuePair"))?;
        for region in regions.iter().flatten() {
            if !Arc::ptr_eq(region.protection_domain(), &links.pd) {
                return Err(VerbsError::invalid("a memory region of another protection domain"));
            }
        }
        post(raw, links)
    }

    /// Posts one Send-queue work request. `regions` are the MRs of the SGEs.
    pub fn post_send(&self, request: &SendRequest<'_>, regions: &[Option<&MemoryRegion>]) -> Result<()> {
        self.with_queue_pair(regions, |raw, links| {
            if request.sges.len() > links.capabilities.max_send_sge as usize {
                return Err(VerbsError::invalid(format!("{} SGEs exceed maxSendSge {}", request.sges.len(), links.capabilities.max_send_sge)));
            }
            if let Some(account) = &links.account {
                account.posting(request.flags & sys::IBV_SEND_SIGNALED != 0);
            }
            // SAFETY: raw has a live QP; the SGE array outlives the call
            // (rdma-core copies work requests into the send queue).
            let posted = check(
                unsafe {
                    sys::roce_post_send(
                        raw,
                        request.wr_id,
                        request.opcode,
                        request.sges.as_ptr(),
                        request.sges.len() as i32,
                        request.flags,
                        request.remote_address,
                        request.rkey,
                        request.immediate,
                    )
                },
                "ibv_post_send",
            );
            if let (Err(_), Some(account)) = (&posted, &links.account) {
                account.post_failed();
            }
            posted
        })
    }

    /// The QP's Send Queue account (ENOTSUP when its Send CQ accounts another QP).
    pub fn send_queue_account(&self) -> Result<Arc<SendQueueAccount>> {
        let (guard, _) = self.live()?;
        let links = guard.as_ref().and_then(|live| live.queue_pair.as_ref()).ok_or_else(|| VerbsError::closed("QueuePair"))?;
        links.account.clone().ok_or_else(|| VerbsError::from_errno(libc::ENOTSUP, "Send Queue accounting needs a Send CQ of its own"))
    }

    /// Posts `sges.len()` work requests of one opcode and `flags`, one SGE
    /// each, with ids `wr_ids`, chained in one ibv_post_send: one doorbell
    /// (for rxe, one system call that runs the send path for all of them).
    /// Returns how many were posted: all, or on error (also returned) those
    /// before the one the provider refused.
    pub fn post_send_chain(&self, wr_ids: &[u64], sges: &[sys::ibv_sge], opcode: u32, flags: u32, region: &MemoryRegion) -> (usize, Result<()>) {
        assert_eq!(wr_ids.len(), sges.len(), "one SGE per work request");
        if sges.is_empty() || sges.len() > sys::POST_CHAIN_MAX {
            return (0, Err(VerbsError::invalid(format!("a chain of 1 to {} work requests", sys::POST_CHAIN_MAX))));
        }
        let mut posted = 0usize;
        let result = self.with_queue_pair(&[Some(region)], |raw, links| {
            if let Some(account) = &links.account {
                sges.iter().for_each(|_| account.posting(flags & sys::IBV_SEND_SIGNALED != 0));
            }
            let mut taken: std::ffi::c_int = 0;
            // SAFETY: raw has a live QP; both arrays hold `count` entries and outlive
            // the call (rdma-core copies work requests into the send queue).
            let status = unsafe { sys::roce_post_send_chain(raw, wr_ids.as_ptr(), sges.as_ptr(), sges.len() as std::ffi::c_int, opcode, flags, &mut taken) };
            posted = taken.clamp(0, sges.len() as std::ffi::c_int) as usize;
            let checked = check(status, "ibv_post_send");
            if let (Err(_), Some(account)) = (&checked, &links.account) {
                account.post_failed();
            }
            checked
        });
        (posted, result)
    }

    /// Posts one Receive work request.
    pub fn post_recv(&self, wr_id: u64, sges: &[sys::ibv_sge], regions: &[Option<&MemoryRegion>]) -> Result<()> {
        self.with_queue_pair(regions, |raw, links| {
            if sges.len() > links.capabilities.max_recv_sge as usize {
                return Err(VerbsError::invalid(format!("{} SGEs exceed maxRecvSge {}", sges.len(), links.capabilities.max_recv_sge)));
            }
            // SAFETY: raw has a live QP; rdma-core copies the request.
            check(unsafe { sys::roce_post_recv(raw, wr_id, sges.as_ptr(), sges.len() as i32) }, "ibv_post_recv")
        })
    }

    /// Connects (after ROUTE_RESOLVED and creating the QP).
    pub fn connect(&self, parameters: &sys::roce_connection_parameters) -> Result<()> {
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live; parameters outlive the call.
        check(unsafe { sys::roce_connect(raw, parameters) }, "rdma_connect")
    }

    /// Accepts a connect request (after creating the QP).
    pub fn accept(&self, parameters: &sys::roce_connection_parameters) -> Result<()> {
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live; parameters outlive the call.
        check(unsafe { sys::roce_accept(raw, parameters) }, "rdma_accept")
    }

    /// Rejects a connect request with optional private data.
    pub fn reject(&self, private_data: &[u8]) -> Result<()> {
        if private_data.len() > sys::PRIVATE_DATA_MAX {
            return Err(VerbsError::invalid(format!("private data is longer than {} bytes", sys::PRIVATE_DATA_MAX)));
        }
        let (_guard, raw) = self.live()?;
        let data = if private_data.is_empty() { std::ptr::null() } else { private_data.as_ptr().cast() };
        // SAFETY: raw is live; data outlives the call.
        if unsafe { sys::rdma_reject(raw, data, private_data.len() as u8) } != 0 {
            return Err(VerbsError::from_errno(sys::last_errno(), "rdma_reject"));
        }
        Ok(())
    }

    /// Starts an orderly disconnect; DISCONNECTED follows on both sides.
    pub fn disconnect(&self) -> Result<()> {
        let (_guard, raw) = self.live()?;
        // SAFETY: raw is live.
        if unsafe { sys::rdma_disconnect(raw) } != 0 {
            return Err(VerbsError::from_errno(sys::last_errno(), "rdma_disconnect"));
        }
        Ok(())
    }

    /// The local (or, with `peer`, the remote) address.
    pub fn address(&self, peer: bool) -> Result<Address> {
        let (_guard, raw) = self.live()?;
        // SAFETY: all-zero is valid for this plain C struct.
        let mut out: sys::roce_address = unsafe { std::mem::zeroed() };
        // SAFETY: raw is live; out is a valid struct.
        let rc = unsafe { if peer { sys::roce_peer_address(raw, &mut out) } else { sys::roce_local_address(raw, &mut out) } };
        check(rc, "rdma_get_addr")?;
        // SAFETY: the shim NUL-terminates host.
        let host = unsafe { CStr::from_ptr(out.host.as_ptr()) }.to_string_lossy().into_owned();
        Ok(Address { host, port: out.port })
    }

    /// Destroys the QP and the id now. Idempotent.
    pub fn close(&self) {
        self.destroy_queue_pair();
        let live = self.state.write().expect("cm id lock poisoned").take();
        if let Some(live) = live {
            // SAFETY: raw is ours and has no QP any more; its events are acked.
            unsafe { sys::rdma_destroy_id(live.raw) };
            // Only now may the channel go (when this was its last id).
            drop(live);
        }
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.state.read().expect("cm id lock poisoned").is_none()
    }
}

impl Drop for CmId {
    fn drop(&mut self) {
        self.close();
    }
}
