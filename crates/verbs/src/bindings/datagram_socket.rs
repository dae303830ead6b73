//! `datagramOpen`, `datagramSend`, `datagramClose`, `datagramParseAddress`:
//! a UDP socket read and written in batches (see datagram_socket.rs), woken
//! by the event loop of the JavaScript thread that opened it; with a
//! `steering` argument, the first socket of a steered SO_REUSEPORT group.
//! `datagramDuplicate`, `datagramAdopt`: a handle on another thread over a
//! duplicate of the socket's (or a group member's) descriptor — send-only,
//! or also read on that thread's loop when given an `onBatch`.
//!
//! Life: `datagramOpen` creates the socket and its poller on the calling
//! thread and wraps both in a handle; `onBatch(count)` is then called on
//! that thread's loop, once per batch of received datagrams (slots
//! 0..count of the handle's `memory`), inside a callback scope so promise
//! jobs run after it as after any Node event. `datagramClose` (or the
//! handle's finalizer) stops the poller and shuts the socket at once.

use crate::datagram_socket::{
    DatagramSocket, STEERING_INSTRUCTIONS_MAX, BATCHES_PER_WAKE_MAX, META_BYTES, RECEIVE_DATA_OFFSET, RECEIVE_META_OFFSET, RECEIVE_SLOTS, RingMemory, SEND_DATA_OFFSET,
    SEND_META_OFFSET, SEND_SLOTS, SLOT_BYTES,
};
use crate::error::{Result, VerbsError, ERR_INTERNAL};
use crate::event_loop_poller::EventLoopPoller;
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::*;
use crate::napi::Env;
use std::cell::RefCell;
use std::ffi::c_void;
use std::net::IpAddr;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;

const KIND: &str = "DatagramSocket";
/// Longest address text accepted: an IPv6 literal with a scope is below this.
const ADDRESS_TEXT_MAX: usize = 64;
/// Socket buffers may not exceed this (Linux caps them lower anyway).
const SOCKET_BUFFER_BYTES_MAX: u64 = 1 << 30;

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "datagramOpen", datagram_open)?;
    export(env, exports, "datagramSend", datagram_send)?;
    export(env, exports, "datagramClose", datagram_close)?;
    export(env, exports, "datagramDuplicate", datagram_duplicate)?;
    export(env, exports, "datagramAdopt", datagram_adopt)?;
    export(env, exports, "datagramParseAddress", datagram_parse_address)
}

/// The batch callback a poller calls, as long as its binding lives.
type SharedCallback = Rc<RefCell<Option<Rc<BatchCallback>>>>;

/// The socket, its poller and batch callback (none for a sender); dropping it
/// releases the callback, stops the poller, then shuts the socket.
struct DatagramBinding {
    socket: Rc<RefCell<DatagramSocket>>,
    poller: Option<EventLoopPoller>,
    callback: Option<SharedCallback>,
}

impl Drop for DatagramBinding {
    fn drop(&mut self) {
        // The callback's Node-API references go now, while the env lives: a
        // worker's env is gone by the time libuv frees the closed poller.
        if let Some(callback) = self.callback.take() {
            callback.borrow_mut().take();
        }
        drop(self.poller.take());
        self.socket.borrow_mut().close();
    }
}

/// The JavaScript `onBatch` function, called from the loop as a Node event.
struct BatchCallback {
    env: napi_env,
    function: napi_ref,
    context: napi_async_context,
}

impl BatchCallback {
    fn new(env: Env, function: napi_value) -> Result<BatchCallback> {
        let mut reference = ptr::null_mut();
        let mut context = ptr::null_mut();
        let name = env.string("roce-verbs datagram batch")?;
        // SAFETY: live values of this call; the reference and context are released in Drop.
        unsafe {
            if napi_create_reference(env.0, function, 1, &mut reference) != NAPI_OK {
                return Err(VerbsError::new(ERR_INTERNAL, "napi_create_reference failed"));
            }
            if napi_async_init(env.0, ptr::null_mut(), name, &mut context) != NAPI_OK {
                napi_delete_reference(env.0, reference);
                return Err(VerbsError::new(ERR_INTERNAL, "napi_async_init failed"));
            }
        }
        Ok(BatchCallback { env: env.0, function: reference, context })
    }

    /// `onBatch(count)`; what it throws becomes an uncaught exception, as
    /// from any event listener.
    fn call(&self, count: usize) {
        let env = self.env;
        // SAFETY: called on the env's own thread from its loop, outside any
        // other JavaScript frame; the scope is closed before returning.
        unsafe {
            let mut scope = ptr::null_mut();
            if napi_open_handle_scope(env, &mut scope) != NAPI_OK {
                return;
            }
            let mut function = ptr::null_mut();
            let mut receiver = ptr::null_mut();
            let mut argument = ptr::null_mut();
            let mut result = ptr::null_mut();
            if napi_get_reference_value(env, self.function, &mut function) == NAPI_OK
                // napi_make_callback wants an object as `this`.
                && napi_get_global(env, &mut receiver) == NAPI_OK
                && napi_create_double(env, count as f64, &mut argument) == NAPI_OK
                && napi_make_callback(env, self.context, receiver, function, 1, &argument, &mut result) == NAPI_PENDING_EXCEPTION
            {
                let mut error = ptr::null_mut();
                napi_get_and_clear_last_exception(env, &mut error);
                napi_fatal_exception(env, error);
            }
            napi_close_handle_scope(env, scope);
        }
    }
}

impl Drop for BatchCallback {
    fn drop(&mut self) {
        // SAFETY: dropped on the env's thread (uv close callback or handle finalizer).
        unsafe {
            napi_async_destroy(self.env, self.context);
            napi_delete_reference(self.env, self.function);
        }
    }
}

/// Reads batches while the socket has datagrams, up to BATCHES_PER_WAKE_MAX.
fn on_readable(socket: &Rc<RefCell<DatagramSocket>>, callback: &BatchCallback) {
    for _ in 0..BATCHES_PER_WAKE_MAX {
        // The borrow ends here: onBatch may send or close through the handle.
        let received = socket.borrow_mut().receive_batch();
        let Ok(count) = received else { return };
        if count == 0 {
            return;
        }
        callback.call(count);
        if count < RECEIVE_SLOTS {
            return;
        }
    }
}

unsafe extern "C" fn finalize_ring(_env: napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: hint is the Box<Arc<RingMemory>> leaked by external_ring, finalized once.
    drop(unsafe { Box::from_raw(hint.cast::<Arc<RingMemory>>()) });
}

/// An ArrayBuffer over the rings that keeps them alive until collected.
fn external_ring(env: Env, memory: &Arc<RingMemory>) -> Result<napi_value> {
    let hint = Box::into_raw(Box::new(memory.clone()));
    let mut out = ptr::null_mut();
    // SAFETY: the memory stays valid while `hint` holds an Arc to it.
    let status = unsafe { napi_create_external_arraybuffer(env.0, memory.pointer().cast(), memory.length(), Some(finalize_ring), hint.cast(), &mut out) };
    if status != NAPI_OK {
        // SAFETY: Node did not take the hint.
        drop(unsafe { Box::from_raw(hint) });
        return Err(VerbsError::new(ERR_INTERNAL, format!("napi_create_external_arraybuffer failed ({status})")));
    }
    Ok(out)
}

fn parse_address(env: Env, value: napi_value, name: &str) -> Result<IpAddr> {
    let text = env.to_string(value, name, ADDRESS_TEXT_MAX)?;
    text.parse::<IpAddr>().map_err(|_| VerbsError::invalid(format!("{name} must be an IPv4 or IPv6 literal, got {text:?}")))
}

/// `datagramOpen(address, port, reusePort, socketBufferBytes, onBatch, steeringProgram?, steeringMembers?) ->
/// handle { memory, address, port, family, receiveSlots, sendSlots, slotBytes,
/// metaBytes, receiveDataOffset, sendDataOffset, receiveMetaOffset, sendMetaOffset }`.
/// With a steering program: the first socket of a steered group of
/// `steeringMembers` more (reusePort is then implied) — the program a
/// Uint32Array of classic BPF instructions, two words each
/// (`code | jt << 16 | jf << 24`, `k`).
fn datagram_open(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let address = parse_address(env, arguments.get(0), "address")?;
    let port = env.to_integer(arguments.get(1), "port", u16::MAX as u64)? as u16;
    let reuse_port = env.to_bool(arguments.get(2), "reusePort")?;
    let buffer_bytes = env.to_integer(arguments.get(3), "socketBufferBytes", SOCKET_BUFFER_BYTES_MAX)? as usize;
    let on_batch = arguments.get(4);
    let steering = arguments.get(5);
    let socket = if env.is_nullish(steering)? {
        DatagramSocket::open(address, port, reuse_port, buffer_bytes)?
    } else {
        let program = steering_program(env, steering)?;
        let members = env.to_integer(arguments.get(6), "steeringMembers", u32::MAX as u64)? as usize;
        DatagramSocket::open_steered(address, port, buffer_bytes, &program, members)?
    };
    polled_handle(env, socket, on_batch)
}

/// Classic BPF instructions from their two-word encoding (see datagramOpen).
fn steering_program(env: Env, value: napi_value) -> Result<Vec<libc::sock_filter>> {
    let (bytes, length) = env.to_bytes(value, "steeringProgram")?;
    if length % 8 != 0 || length / 8 > STEERING_INSTRUCTIONS_MAX {
        return Err(VerbsError::invalid(format!("steeringProgram holds whole instructions of 8 bytes, at most {STEERING_INSTRUCTIONS_MAX}; got {length} bytes")));
    }
    // SAFETY: `length` bytes of the typed array, read before any JavaScript runs.
    let words = unsafe { std::slice::from_raw_parts(bytes, length) };
    Ok(words
        .chunks_exact(8)
        .map(|instruction| {
            let head = u32::from_ne_bytes([instruction[0], instruction[1], instruction[2], instruction[3]]);
            let k = u32::from_ne_bytes([instruction[4], instruction[5], instruction[6], instruction[7]]);
            libc::sock_filter { code: (head & 0xffff) as u16, jt: ((head >> 16) & 0xff) as u8, jf: (head >> 24) as u8, k }
        })
        .collect())
}

/// A handle whose socket is read on this thread's loop, `onBatch(count)` per batch.
fn polled_handle(env: Env, socket: DatagramSocket, on_batch: napi_value) -> Result<napi_value> {
    if env.type_of(on_batch)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type("onBatch", "a function"));
    }
    let local = socket.local_address()?;
    let memory = socket.memory().clone();
    let fd = socket.fd();
    let socket = Rc::new(RefCell::new(socket));
    let callback = BatchCallback::new(env, on_batch)?;
    let mut event_loop = ptr::null_mut();
    // SAFETY: env is live; the loop outlives every handle of its thread.
    if unsafe { napi_get_uv_event_loop(env.0, &mut event_loop) } != NAPI_OK {
        return Err(VerbsError::new(ERR_INTERNAL, "napi_get_uv_event_loop failed"));
    }
    let polled = socket.clone();
    let callback: SharedCallback = Rc::new(RefCell::new(Some(Rc::new(callback))));
    let polled_callback = callback.clone();
    let on_wake = move || {
        // Not borrowed across the call: onBatch may close the socket, which releases the callback.
        let current = polled_callback.borrow().clone();
        if let Some(current) = current {
            on_readable(&polled, &current);
        }
    };
    // SAFETY: the loop is this thread's; the descriptor stays open until the
    // binding's Drop has stopped the poller.
    let poller = unsafe { EventLoopPoller::start(event_loop, fd, Box::new(on_wake))? };
    let handle = wrap(env, KIND, DatagramBinding { socket, poller: Some(poller), callback: Some(callback) })?;
    describe_handle(env, handle, &memory, local)?;
    Ok(handle)
}

/// The handle's ring layout and bound address, as NativeDatagramSocket reads them.
fn describe_handle(env: Env, handle: napi_value, memory: &Arc<RingMemory>, local: std::net::SocketAddr) -> Result<()> {
    env.set(handle, "memory", external_ring(env, memory)?)?;
    env.set(handle, "address", env.string(&local.ip().to_string())?)?;
    env.set(handle, "port", env.number(f64::from(local.port()))?)?;
    env.set(handle, "family", env.number(if local.is_ipv4() { 4.0 } else { 6.0 })?)?;
    for (name, value) in [
        ("receiveSlots", RECEIVE_SLOTS),
        ("sendSlots", SEND_SLOTS),
        ("slotBytes", SLOT_BYTES),
        ("metaBytes", META_BYTES),
        ("receiveDataOffset", RECEIVE_DATA_OFFSET),
        ("sendDataOffset", SEND_DATA_OFFSET),
        ("receiveMetaOffset", RECEIVE_META_OFFSET),
        ("sendMetaOffset", SEND_META_OFFSET),
    ] {
        env.set(handle, name, env.number(value as f64)?)?;
    }
    Ok(())
}

/// `datagramDuplicate(socket, member) -> fd`: a new descriptor of the socket
/// (member 0) or of member `member` of its steered group, for
/// `datagramAdopt` on another thread; the caller owns it until then.
fn datagram_duplicate(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let member = env.to_integer(arguments.get(1), "member", u32::MAX as u64)? as usize;
    let fd = binding_arg(env, arguments.get(0))?.with(|binding| binding.socket.borrow().duplicate_descriptor(member))?;
    env.number(f64::from(fd))
}

/// `datagramAdopt(fd, onBatch?) -> handle` (as datagramOpen's): a socket
/// owning `fd`, which it closes with `datagramClose` or its finalizer (also
/// when adopting fails). With `onBatch` it is read on this thread's loop;
/// without, it only sends.
fn datagram_adopt(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let fd = env.to_integer(arguments.get(0), "fd", i32::MAX as u64)? as i32;
    let socket = DatagramSocket::adopt(fd)?;
    let on_batch = arguments.get(1);
    if !env.is_nullish(on_batch)? {
        return polled_handle(env, socket, on_batch);
    }
    let local = socket.local_address()?;
    let memory = socket.memory().clone();
    let handle = wrap(env, KIND, DatagramBinding { socket: Rc::new(RefCell::new(socket)), poller: None, callback: None })?;
    describe_handle(env, handle, &memory, local)?;
    Ok(handle)
}

fn binding_arg<'a>(env: Env, value: napi_value) -> Result<&'a Handle<DatagramBinding>> {
    unwrap::<DatagramBinding>(env, value, "socket", KIND)
}

/// `datagramSend(socket, count) -> failed`: sends send slots 0..count; the
/// number the kernel refused (UDP drops them: the protocol retransmits).
fn datagram_send(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let count = env.to_integer(arguments.get(1), "count", SEND_SLOTS as u64)? as usize;
    let outcome = binding_arg(env, arguments.get(0))?.with(|binding| binding.socket.borrow_mut().send_batch(count))?;
    env.number(outcome.failed as f64)
}

/// `datagramClose(socket)`: stops the poller and shuts the socket; idempotent.
fn datagram_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    drop(binding_arg(env, arguments.get(0))?.take());
    env.undefined()
}

/// `datagramParseAddress(text, out16) -> 4 | 6 | 0`: the address's bytes
/// (IPv4 in the first four) for a send slot's metadata; 0 for a non-literal.
fn datagram_parse_address(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let text = env.to_string(arguments.get(0), "text", ADDRESS_TEXT_MAX)?;
    let (out, length) = env.to_bytes(arguments.get(1), "out")?;
    if length < 16 {
        return Err(VerbsError::invalid(format!("out must hold 16 bytes, got {length}")));
    }
    let family = match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            // SAFETY: out has at least 16 bytes, checked above.
            unsafe { ptr::copy_nonoverlapping(v4.octets().as_ptr(), out, 4) };
            4.0
        }
        Ok(IpAddr::V6(v6)) => {
            // SAFETY: as above.
            unsafe { ptr::copy_nonoverlapping(v6.octets().as_ptr(), out, 16) };
            6.0
        }
        Err(_) => 0.0,
    };
    env.number(family)
}
