//! `channelCreate`, `channelUnref`, `channelClose`.
//!
//! A channel's events reach JavaScript as plain objects through a
//! threadsafe function. A connect request's new id is adopted here, on the
//! JavaScript thread, and arrives as a CmId handle in `event.request`.

use crate::cm_id::CmId;
use crate::error::{Result, VerbsError};
use crate::event_channel::{CmEvent, EventChannel, EventOutcome, EventSink};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::*;
use crate::napi::threadsafe::{CallError, ThreadsafeCallback};
use crate::napi::Env;
use std::sync::Arc;

pub(super) const KIND: &str = "EventChannel";
/// Events waiting for JavaScript per channel; beyond it the thread backs off.
const EVENTS_QUEUED_MAX: usize = 1024;

pub(super) struct ChannelBinding {
    pub(super) channel: Arc<EventChannel>,
    callback: Arc<ThreadsafeCallback<CmEvent>>,
}

struct JavaScriptSink(Arc<ThreadsafeCallback<CmEvent>>);

impl EventSink for JavaScriptSink {
    fn deliver(&self, event: CmEvent) -> EventOutcome {
        match self.0.call(event) {
            Ok(()) => EventOutcome::Accepted,
            Err(CallError::Full(event)) => EventOutcome::Full(event),
            Err(CallError::Closing(_)) => EventOutcome::Closed,
        }
    }
}

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "channelCreate", channel_create)?;
    export(env, exports, "channelUnref", channel_unref)?;
    export(env, exports, "channelClose", channel_close)
}

/// The channel inside an EventChannel handle argument.
pub(super) fn channel_arg<'a>(env: Env, value: napi_value) -> Result<&'a Handle<ChannelBinding>> {
    unwrap::<ChannelBinding>(env, value, "eventChannel", KIND)
}

fn channel_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let callback = arguments.get(0);
    if env.type_of(callback)? != NAPI_FUNCTION {
        return Err(VerbsError::arg_type("onEvent", "a function"));
    }
    let tsfn = Arc::new(ThreadsafeCallback::new(env, callback, "roce-verbs cm events", EVENTS_QUEUED_MAX, deliver_event)?);
    let channel = EventChannel::create(Box::new(JavaScriptSink(tsfn.clone())))?;
    wrap(env, KIND, ChannelBinding { channel, callback: tsfn })
}

fn deliver_event(env: Env, callback: napi_value, event: CmEvent) -> Result<()> {
    let object = env.object()?;
    env.set(object, "type", env.number(event.kind as f64)?)?;
    env.set(object, "status", env.number(event.status as f64)?)?;
    env.set(object, "token", env.number(event.token as f64)?)?;
    env.set(object, "listenToken", env.number(event.listen_token as f64)?)?;
    let parameters = &event.parameters;
    env.set(object, "responderResources", env.number(parameters.responder_resources as f64)?)?;
    env.set(object, "initiatorDepth", env.number(parameters.initiator_depth as f64)?)?;
    let private_data = &parameters.private_data[..parameters.private_data_len as usize];
    env.set(object, "privateData", env.buffer_copy(private_data)?)?;
    if let Some(request) = &event.request {
        // Adopt only while the channel lives; otherwise its Drop already
        // rejected and freed the request, and the event is moot.
        let Some(channel) = event.channel.upgrade() else { return Ok(()) };
        let Some(raw) = channel.adopt_request(request) else { return Ok(()) };
        let id = CmId::adopt(raw, &channel, event.token);
        env.set(object, "request", super::cm_id::wrap_cm_id(env, id)?)?;
    }
    env.call(callback, &[object])?;
    Ok(())
}

fn channel_unref(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let keep_alive = env.to_bool(arguments.get(1), "keepAlive")?;
    channel_arg(env, arguments.get(0))?.with(|binding| {
        if keep_alive {
            binding.callback.reference(env)
        } else {
            binding.callback.unref(env)
        }
        Ok(())
    })?;
    env.undefined()
}

fn channel_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    // The channel itself goes when its last id does (they hold Arcs).
    drop(channel_arg(env, arguments.get(0))?.take());
    env.undefined()
}
