//! An rdma_cm event channel and the native thread that reads it.
//!
//! Life: created by the JavaScript binding for a listener or for an outgoing
//! connection; every connection id on it holds an `Arc`, so the channel is
//! destroyed only after its ids (an rdma_cm rule). Its thread waits on the
//! channel's fd, copies and acknowledges each event at once (so destroying
//! an id never waits for JavaScript) and hands it to an `EventSink`.
//!
//! Connect requests bring a new id that no one owns yet: the thread gives it
//! a token and parks it in `pending_requests` until the JavaScript thread
//! adopts it (`adopt_request`). Drop stops and joins the thread, then rejects
//! and destroys requests nobody adopted, then destroys the channel.

use crate::error::{Result, VerbsError};
use crate::sys;
use crate::wakeup::{set_nonblocking, Wakeup, Woken};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

/// Most connect requests waiting for JavaScript to accept or reject them,
/// per channel: beyond it new requests are rejected by the thread.
pub const PENDING_REQUESTS_MAX: usize = 1024;
/// Pause before retrying a sink that is full.
const SINK_FULL_BACKOFF: Duration = Duration::from_micros(200);

/// One connection event, copied out of rdma_cm.
pub struct CmEvent {
    /// `enum rdma_cm_event_type`.
    pub kind: u32,
    /// The event's status (an errno or a reject reason, depending on kind).
    pub status: i32,
    /// Token of the id the event is for (for requests: the new id's token).
    pub token: u64,
    /// Token of the listening id, for connect requests.
    pub listen_token: u64,
    /// The new id of a connect request, to adopt on the JavaScript thread.
    pub request: Option<PendingRequest>,
    /// Connection parameters (private data) carried by the event.
    pub parameters: sys::roce_connection_parameters,
    /// The channel, to adopt the request with.
    pub channel: Weak<EventChannel>,
}

/// A connect request's id, parked in the channel until adopted.
pub struct PendingRequest(pub *mut sys::rdma_cm_id);
// SAFETY: only an address; it is dereferenced on the JavaScript thread after
// `adopt_request` proves the channel (and so the id) still exists.
unsafe impl Send for PendingRequest {}

/// What a sink says about an event.
pub enum EventOutcome {
    Accepted,
    Full(CmEvent),
    Closed,
}

/// Where the channel thread delivers events.
pub trait EventSink: Send {
    /// Takes one event.
    fn deliver(&self, event: CmEvent) -> EventOutcome;
}

struct RawChannel(*mut sys::rdma_event_channel);
// SAFETY: the channel outlives its thread (joined in Drop) and librdmacm
// allows reading events on one thread while ids are used on another.
unsafe impl Send for RawChannel {}
unsafe impl Sync for RawChannel {}

/// What the channel and its thread share. The thread never holds the
/// channel itself (only a `Weak` it passes along), so the channel's Drop
/// always runs on the JavaScript thread and can join the reader.
struct Shared {
    next_token: AtomicU64,
    pending_requests: Mutex<Vec<PendingRequest>>,
}

impl Shared {
    fn next_token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    fn park_request(&self, id: *mut sys::rdma_cm_id) -> bool {
        let mut pending = self.pending_requests.lock().expect("pending lock");
        if pending.len() >= PENDING_REQUESTS_MAX {
            return false;
        }
        pending.push(PendingRequest(id));
        true
    }
}

/// An event channel with its reading thread.
pub struct EventChannel {
    raw: RawChannel,
    shared: Arc<Shared>,
    wakeup: Arc<Wakeup>,
    join: Mutex<Option<JoinHandle<()>>>,
}

impl EventChannel {
    /// Creates a channel whose events go to `sink`.
    pub fn create(sink: Box<dyn EventSink>) -> Result<Arc<EventChannel>> {
        // SAFETY: plain constructor; destroyed in Drop.
        let raw = unsafe { sys::rdma_create_event_channel() };
        if raw.is_null() {
            return Err(VerbsError::from_errno(sys::last_errno(), "rdma_create_event_channel"));
        }
        let channel = Arc::new(EventChannel {
            raw: RawChannel(raw),
            shared: Arc::new(Shared { next_token: AtomicU64::new(1), pending_requests: Mutex::new(Vec::new()) }),
            wakeup: Arc::new(Wakeup::new()?),
            join: Mutex::new(None),
        });
        // SAFETY: raw is live.
        set_nonblocking(unsafe { sys::roce_event_channel_fd(raw) })?;
        let weak = Arc::downgrade(&channel);
        let wakeup = channel.wakeup.clone();
        let reader = Reader { channel: RawChannel(raw), owner: weak, shared: channel.shared.clone(), wakeup, sink };
        let join = std::thread::Builder::new()
            .name("roce-cm".into())
            .spawn(move || reader.run())
            .map_err(|error| VerbsError::from_errno(error.raw_os_error().unwrap_or(libc::EAGAIN), "spawn event thread"))?;
        *channel.join.lock().expect("join lock") = Some(join);
        Ok(channel)
    }

    /// The raw channel, for creating ids on it.
    pub fn raw(&self) -> *mut sys::rdma_event_channel {
        self.raw.0
    }

    /// A token naming a new id in its events.
    pub fn next_token(&self) -> u64 {
        self.shared.next_token()
    }

    /// Takes a parked connect request's id; None if it is no longer parked.
    pub fn adopt_request(&self, request: &PendingRequest) -> Option<*mut sys::rdma_cm_id> {
        let mut pending = self.shared.pending_requests.lock().expect("pending lock");
        let index = pending.iter().position(|parked| parked.0 == request.0)?;
        Some(pending.swap_remove(index).0)
    }
}

impl Drop for EventChannel {
    fn drop(&mut self) {
        self.wakeup.signal();
        if let Some(join) = self.join.get_mut().expect("join lock").take() {
            let _ = join.join();
        }
        for request in self.shared.pending_requests.lock().expect("pending lock").drain(..) {
            // SAFETY: an unadopted request id is ours alone; reject then free it.
            unsafe {
                sys::rdma_reject(request.0, std::ptr::null(), 0);
                sys::rdma_destroy_id(request.0);
            }
        }
        // SAFETY: every id on the channel is destroyed (they held Arcs to us).
        unsafe { sys::rdma_destroy_event_channel(self.raw.0) };
    }
}

struct Reader {
    channel: RawChannel,
    owner: Weak<EventChannel>,
    shared: Arc<Shared>,
    wakeup: Arc<Wakeup>,
    sink: Box<dyn EventSink>,
}

impl Reader {
    fn run(self) {
        // SAFETY: the channel is live until Drop joins us.
        let fd = unsafe { sys::roce_event_channel_fd(self.channel.0) };
        while self.wakeup.wait(fd) == Woken::Ready {
            loop {
                // SAFETY: all-zero is valid for this plain C struct.
                let mut raw: sys::roce_cm_event = unsafe { std::mem::zeroed() };
                // SAFETY: the channel is live; non-blocking, so EAGAIN when empty.
                if unsafe { sys::roce_get_cm_event(self.channel.0, &mut raw) } != 0 {
                    break;
                }
                let Some(event) = self.copy_event(&raw) else { continue };
                if !self.deliver(event) {
                    return;
                }
            }
        }
    }

    /// Turns a raw event into a `CmEvent`, parking a connect request's new id.
    fn copy_event(&self, raw: &sys::roce_cm_event) -> Option<CmEvent> {
        let mut event = CmEvent {
            kind: raw.kind,
            status: raw.status,
            token: raw.id_context,
            listen_token: raw.listen_context,
            request: None,
            parameters: raw.parameters,
            channel: self.owner.clone(),
        };
        if raw.kind == sys::RDMA_CM_EVENT_CONNECT_REQUEST {
            if !self.shared.park_request(raw.id) {
                // SAFETY: the new id is ours alone until parked: refuse and free it.
                unsafe {
                    sys::rdma_reject(raw.id, std::ptr::null(), 0);
                    sys::rdma_destroy_id(raw.id);
                }
                return None;
            }
            event.token = self.shared.next_token();
            // SAFETY: the parked id is live (only the channel's Drop frees
            // parked ids, after joining us); the token names it in later events.
            unsafe { sys::roce_cm_id_set_context(raw.id, event.token) };
            event.request = Some(PendingRequest(raw.id));
        }
        Some(event)
    }

    /// Hands one event to the sink, waiting while it is full. False: stop.
    fn deliver(&self, mut event: CmEvent) -> bool {
        loop {
            match self.sink.deliver(event) {
                EventOutcome::Accepted => return true,
                EventOutcome::Closed => return false,
                EventOutcome::Full(returned) => {
                    if self.wakeup.is_stopped() {
                        return false;
                    }
                    event = returned;
                    std::thread::sleep(SINK_FULL_BACKOFF);
                }
            }
        }
    }
}
