//! `cqWatch`, `cqRoute`, `cqSetArmed`: a completion queue routed by the
//! event loop of the JavaScript thread that created it, with no completion
//! thread.
//!
//! Why: on a notified CQ a completion crosses two sleeping threads (the
//! completion thread, then the event loop through a threadsafe call), and a
//! threaded Send CQ with a release list wakes its thread for every Send and
//! the loop again for the list's transition — each wake costs system calls
//! and, in the emulated lab, milliseconds. Here the loop's own epoll watches
//! the CQ's completion channel (`uv_poll`): a completion that raises an event
//! wakes one thread, the one that handles it.
//!
//! On an event the channel's events are taken, the CQ is armed again if the
//! watch is `armed`, then polled empty (`CompletionQueue::route_owned`): Sends
//! (wrIds below the limit) are appended to the release list, if the watch
//! has one, exactly as a completion thread appends them; every other
//! completion is written into `records` (the Uint32Array given at creation,
//! COMPLETION_WORDS words each, room for the CQ's depth) and
//! `onEvent(count, transition)` is called —
//! `transition` is true when these appends took the release list from empty
//! to non-empty (the seed's self-enqueue trigger). The same routing runs on
//! demand, without an event: `cqRoute` (a backstop's turn) and inside
//! `qpPostSendAndDrain` (the reply's post), where a drain follows at once and
//! the transition is not reported.
//!
//! Unarmed, the CQ raises no events and its completions wait for the next
//! route: the owner arms it while it waits for one of them (Send Queue room,
//! RDMA Reads, a teardown's drain markers). `cqSetArmed(cq, true)` arms it
//! and routes once, so a completion that came before the arm is not missed.
//!
//! Single producer: the watch is the only appender of its release list (the
//! CQ has no completion thread), all on this thread, so "empty before the
//! route, non-empty after" is exactly the transition.
//!
//! Life: created by `cqWatch` on a JavaScript thread, owned by the CQ's
//! handle; closing the handle (or its finalizer) stops the uv_poll before
//! the CQ and its channel are destroyed. `onEvent` runs on that thread only.

use super::completion_queue::{cq_arg, CqBinding, KIND as CQ_KIND};
use super::device::device_arg;
use super::release_list::list_arg;
use crate::completion_queue::CompletionQueue;
use crate::completion_thread::RELEASE_WR_ID_LIMIT_DEFAULT;
use crate::error::{Result, VerbsError, ERR_INTERNAL};
use crate::event_loop_poller::EventLoopPoller;
use crate::napi::function::{export, Arguments};
use crate::napi::handle::wrap;
use crate::napi::sys::*;
use crate::napi::Env;
use crate::release_list::{ReleaseList, FAILED_BIT};
use crate::sys::roce_completion;
use std::cell::Cell;
use std::ptr;
use std::rc::{Rc, Weak};
use std::sync::{Arc, Weak as ArcWeak};

/// Routes per event or `cqRoute` while `records` fills up. With `records`
/// holding the CQ's depth, a second route only meets completions that came
/// after the arm, which raise an event of their own: nothing is stranded.
const ROUTES_PER_WAKE_MAX: usize = 8;

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "cqWatch", cq_watch)?;
    export(env, exports, "cqRoute", cq_route)?;
    export(env, exports, "cqSetArmed", cq_set_armed)
}

/// The watch of one CQ; the uv_poll goes first when it is dropped.
pub(super) struct LoopWatch {
    poller: Option<EventLoopPoller>,
    state: Rc<WatchState>,
}

impl Drop for LoopWatch {
    fn drop(&mut self) {
        drop(self.poller.take());
    }
}

/// What a route needs; shared by the uv_poll callback (weakly) and the handle.
pub(super) struct WatchState {
    env: napi_env,
    /// Weak: the CQ handle's Arc is the one `cqClose` counts.
    cq: ArcWeak<CompletionQueue>,
    list: Option<Arc<ReleaseList>>,
    wr_id_limit: u64,
    armed: Cell<bool>,
    on_event: napi_ref,
    records: napi_ref,
    context: napi_async_context,
}

impl Drop for WatchState {
    fn drop(&mut self) {
        // SAFETY: dropped on the env's thread, while the env lives (handle close or finalizer).
        unsafe {
            napi_async_destroy(self.env, self.context);
            napi_delete_reference(self.env, self.on_event);
            napi_delete_reference(self.env, self.records);
        }
    }
}

/// What one route found.
struct Routed {
    /// Completions written into `records`.
    count: usize,
    /// `records` filled up: the CQ may hold more.
    more: bool,
    /// The release list went empty -> non-empty (when asked to report it).
    transition: bool,
}

impl WatchState {
    /// Polls the CQ empty (or until `records` is full). Needs an open handle scope.
    fn route(&self, report_transition: bool) -> Result<Routed> {
        let Some(cq) = self.cq.upgrade() else {
            return Ok(Routed { count: 0, more: false, transition: false });
        };
        let env = Env(self.env);
        let mut records = ptr::null_mut();
        // SAFETY: the reference is live while self is; a handle scope is open.
        if unsafe { napi_get_reference_value(self.env, self.records, &mut records) } != NAPI_OK {
            return Err(VerbsError::new(ERR_INTERNAL, "napi_get_reference_value failed"));
        }
        let (data, bytes) = env.to_bytes(records, "records")?;
        // SAFETY: checked 4-aligned at creation; the typed array lives (referenced) and is ours for this call.
        let out = unsafe { std::slice::from_raw_parts_mut(data.cast::<roce_completion>(), bytes / std::mem::size_of::<roce_completion>()) };
        let was_empty = self.list.as_ref().is_none_or(|list| list.is_empty());
        let (count, more) = cq.route_owned(self.list.as_deref(), self.wr_id_limit, out)?;
        let transition = report_transition && was_empty && self.list.as_ref().is_some_and(|list| !list.is_empty());
        Ok(Routed { count, more, transition })
    }

    fn arguments(&self, routed: &Routed) -> Result<[napi_value; 2]> {
        let env = Env(self.env);
        Ok([env.number(routed.count as f64)?, env.boolean(routed.transition)?])
    }

    fn on_event_function(&self) -> Result<napi_value> {
        let mut function = ptr::null_mut();
        // SAFETY: the reference is live while self is; a handle scope is open.
        if unsafe { napi_get_reference_value(self.env, self.on_event, &mut function) } != NAPI_OK {
            return Err(VerbsError::new(ERR_INTERNAL, "napi_get_reference_value failed"));
        }
        Ok(function)
    }

    /// Routes once from inside a JavaScript call, handing what it found to
    /// `onEvent` before returning (a nested call: JavaScript is on the stack).
    pub(super) fn route_nested(&self, report_transition: bool) -> Result<()> {
        for _ in 0..ROUTES_PER_WAKE_MAX {
            let routed = self.route(report_transition)?;
            if routed.count > 0 || routed.transition {
                Env(self.env).call(self.on_event_function()?, &self.arguments(&routed)?)?;
            }
            if !routed.more {
                break;
            }
        }
        Ok(())
    }

    /// One round of an event: a route and its onEvent, in a handle scope, as
    /// a Node event (promise jobs run after it). Returns whether to go on.
    fn route_from_loop(&self) -> bool {
        let env = self.env;
        // SAFETY: on the env's own thread, called from its loop outside any
        // JavaScript frame; the scope is closed before returning.
        unsafe {
            let mut scope = ptr::null_mut();
            if napi_open_handle_scope(env, &mut scope) != NAPI_OK {
                return false;
            }
            let more = match self.route(true) {
                Ok(routed) => {
                    if routed.count > 0 || routed.transition {
                        self.call_from_loop(&routed);
                    }
                    routed.more
                }
                Err(_) => false,
            };
            napi_close_handle_scope(env, scope);
            more
        }
    }

    fn call_from_loop(&self, routed: &Routed) {
        let env = self.env;
        let (Ok(function), Ok(arguments)) = (self.on_event_function(), self.arguments(routed)) else { return };
        let mut receiver = ptr::null_mut();
        let mut result = ptr::null_mut();
        // SAFETY: live handles of the open scope; napi_make_callback wants an object as `this`.
        unsafe {
            if napi_get_global(env, &mut receiver) == NAPI_OK
                && napi_make_callback(env, self.context, receiver, function, arguments.len(), arguments.as_ptr(), &mut result) == NAPI_PENDING_EXCEPTION
            {
                let mut error = ptr::null_mut();
                napi_get_and_clear_last_exception(env, &mut error);
                napi_fatal_exception(env, error);
            }
        }
    }
}

fn on_readable(state: &Weak<WatchState>) {
    let Some(state) = state.upgrade() else { return };
    let Some(cq) = state.cq.upgrade() else { return };
    cq.take_events();
    // Armed before the poll: a completion after it raises the next event.
    if state.armed.get() && cq.arm().is_err() {
        return;
    }
    drop(cq);
    for _ in 0..ROUTES_PER_WAKE_MAX {
        if !state.route_from_loop() {
            return;
        }
    }
}

/// The watch state of a watched CQ handle argument (cloned: no borrow is
/// held while onEvent runs, which may close the handle).
pub(super) fn watch_arg(env: Env, value: napi_value, name: &str) -> Result<Rc<WatchState>> {
    let binding = cq_arg(env, value, name)?.get()?;
    binding.watch.as_ref().map(|watch| watch.state.clone()).ok_or_else(|| VerbsError::arg_type(name, "a completion queue made by cqWatch"))
}

/// `cqWatch(device, depth, records: Uint32Array, onEvent(count, transition),
/// releaseList?, releaseWrIdLimit?, armed) -> cq`
fn cq_watch(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let device = device_arg(env, arguments.get(0))?.get()?.clone();
    let depth = env.to_u32(arguments.get(1), "depth")?;
    let records = arguments.get(2);
    let (data, bytes) = env.to_bytes(records, "records")?;
    if bytes < std::mem::size_of::<roce_completion>() || (data as usize) % 4 != 0 {
        return Err(VerbsError::invalid("records must be a Uint32Array of at least one completion record"));
    }
    let on_event = arguments.get(3);
    if env.type_of(on_event)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type("onEvent", "a function"));
    }
    let list = match env.is_nullish(arguments.get(4))? {
        true => None,
        false => Some(list_arg(env, arguments.get(4))?.get()?.clone()),
    };
    let wr_id_limit = match env.is_nullish(arguments.get(5))? {
        true => RELEASE_WR_ID_LIMIT_DEFAULT,
        false => env.to_integer(arguments.get(5), "releaseWrIdLimit", FAILED_BIT)?,
    };
    if wr_id_limit == 0 {
        return Err(VerbsError::invalid("releaseWrIdLimit must be in [1, 2^52]"));
    }
    let armed = env.to_bool(arguments.get(6), "armed")?;
    let cq = Arc::new(CompletionQueue::create(&device, depth, true)?);
    let fd = cq.channel_fd()?;
    let state = Rc::new(WatchState::new(env, Arc::downgrade(&cq), list, wr_id_limit, armed, on_event, records)?);
    if armed {
        cq.arm()?;
    }
    let mut event_loop = ptr::null_mut();
    // SAFETY: env is live; the loop outlives every handle of its thread.
    if unsafe { napi_get_uv_event_loop(env.0, &mut event_loop) } != NAPI_OK {
        return Err(VerbsError::new(ERR_INTERNAL, "napi_get_uv_event_loop failed"));
    }
    let weak = Rc::downgrade(&state);
    // SAFETY: the loop is this thread's; the channel's descriptor stays open
    // until the watch (dropped before the CQ, see CqBinding) has stopped the poller.
    let poller = unsafe { EventLoopPoller::start(event_loop, fd, Box::new(move || on_readable(&weak)))? };
    wrap(env, CQ_KIND, CqBinding::watched(cq, LoopWatch { poller: Some(poller), state }))
}

impl WatchState {
    fn new(env: Env, cq: ArcWeak<CompletionQueue>, list: Option<Arc<ReleaseList>>, wr_id_limit: u64, armed: bool, on_event: napi_value, records: napi_value) -> Result<WatchState> {
        let name = env.string("roce-verbs completion watch")?;
        let mut on_event_ref = ptr::null_mut();
        let mut records_ref = ptr::null_mut();
        let mut context = ptr::null_mut();
        // SAFETY: live values of this call; each reference and the context is released once, in Drop.
        unsafe {
            if napi_create_reference(env.0, on_event, 1, &mut on_event_ref) != NAPI_OK {
                return Err(VerbsError::new(ERR_INTERNAL, "napi_create_reference failed"));
            }
            if napi_create_reference(env.0, records, 1, &mut records_ref) != NAPI_OK {
                napi_delete_reference(env.0, on_event_ref);
                return Err(VerbsError::new(ERR_INTERNAL, "napi_create_reference failed"));
            }
            if napi_async_init(env.0, ptr::null_mut(), name, &mut context) != NAPI_OK {
                napi_delete_reference(env.0, on_event_ref);
                napi_delete_reference(env.0, records_ref);
                return Err(VerbsError::new(ERR_INTERNAL, "napi_async_init failed"));
            }
        }
        Ok(WatchState { env: env.0, cq, list, wr_id_limit, armed: Cell::new(armed), on_event: on_event_ref, records: records_ref, context })
    }
}

/// `cqRoute(cq, reportTransition)`: routes the watched CQ now; what it
/// found reaches onEvent before this returns.
fn cq_route(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let state = watch_arg(env, arguments.get(0), "completionQueue")?;
    let report = env.to_bool(arguments.get(1), "reportTransition")?;
    state.route_nested(report)?;
    env.undefined()
}

/// `cqSetArmed(cq, armed)`: events from now on (armed, then one route, so a
/// completion from before the arm is not left behind) or only routes.
fn cq_set_armed(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let state = watch_arg(env, arguments.get(0), "completionQueue")?;
    let armed = env.to_bool(arguments.get(1), "armed")?;
    state.armed.set(armed);
    if armed {
        if let Some(cq) = state.cq.upgrade() {
            cq.arm()?;
        }
        state.route_nested(true)?;
    }
    env.undefined()
}
