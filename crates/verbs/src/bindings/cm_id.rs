//! `cmIdCreate`, `cmIdBind`, `cmIdListen`, `cmIdResolveAddress`,
//! `cmIdResolveRoute`, `cmIdDeviceName`, `cmIdCreateQueuePair`,
//! `cmIdConnect`, `cmIdAccept`, `cmIdReject`, `cmIdDisconnect`,
//! `cmIdAddress`, `cmIdClose`.

use super::completion_queue::cq_arg;
use super::event_channel::channel_arg;
use super::protection_domain::pd_arg;
use super::queue_pair::wrap_queue_pair;
use crate::cm_id::CmId;
use crate::error::Result;
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::napi_value;
use crate::napi::Env;
use crate::sys;
use std::sync::Arc;

pub(super) const KIND: &str = "CmId";
/// Longest textual address we accept (an IPv6 literal is at most 45).
const HOST_MAX: usize = 63;

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "cmIdCreate", cm_id_create)?;
    export(env, exports, "cmIdBind", cm_id_bind)?;
    export(env, exports, "cmIdListen", cm_id_listen)?;
    export(env, exports, "cmIdResolveAddress", cm_id_resolve_address)?;
    export(env, exports, "cmIdResolveRoute", cm_id_resolve_route)?;
    export(env, exports, "cmIdDeviceName", cm_id_device_name)?;
    export(env, exports, "cmIdCreateQueuePair", cm_id_create_queue_pair)?;
    export(env, exports, "cmIdConnect", cm_id_connect)?;
    export(env, exports, "cmIdAccept", cm_id_accept)?;
    export(env, exports, "cmIdReject", cm_id_reject)?;
    export(env, exports, "cmIdDisconnect", cm_id_disconnect)?;
    export(env, exports, "cmIdAddress", cm_id_address)?;
    export(env, exports, "cmIdClose", cm_id_close)
}

/// Wraps an id, with its token on the handle.
pub(super) fn wrap_cm_id(env: Env, id: Arc<CmId>) -> Result<napi_value> {
    let token = id.token();
    let handle = wrap(env, KIND, id)?;
    env.set(handle, "token", env.number(token as f64)?)?;
    Ok(handle)
}

fn id_arg<'a>(env: Env, arguments: &Arguments) -> Result<&'a Handle<Arc<CmId>>> {
    unwrap::<Arc<CmId>>(env, arguments.get(0), "cmId", KIND)
}

fn port_arg(env: Env, value: napi_value) -> Result<u16> {
    Ok(env.to_integer(value, "port", u16::MAX as u64)? as u16)
}

fn cm_id_create(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let id = channel_arg(env, arguments.get(0))?.with(|binding| CmId::create(&binding.channel))?;
    wrap_cm_id(env, id)
}

fn cm_id_bind(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let host = env.to_string(arguments.get(1), "address", HOST_MAX)?;
    let port = port_arg(env, arguments.get(2))?;
    id_arg(env, arguments)?.with(|id| id.bind(&host, port))?;
    env.undefined()
}

fn cm_id_listen(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let backlog = env.to_u32(arguments.get(1), "backlog")?;
    id_arg(env, arguments)?.with(|id| id.listen(backlog))?;
    env.undefined()
}

fn cm_id_resolve_address(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let host = env.to_string(arguments.get(1), "address", HOST_MAX)?;
    let port = port_arg(env, arguments.get(2))?;
    let timeout = env.to_u32(arguments.get(3), "timeoutMs")?;
    id_arg(env, arguments)?.with(|id| id.resolve_address(&host, port, timeout))?;
    env.undefined()
}

fn cm_id_resolve_route(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let timeout = env.to_u32(arguments.get(1), "timeoutMs")?;
    id_arg(env, arguments)?.with(|id| id.resolve_route(timeout))?;
    env.undefined()
}

fn cm_id_device_name(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let device = id_arg(env, arguments)?.with(|id| id.device())?;
    env.string(device.name())
}

/// `cmIdCreateQueuePair(id, pd, sendCq, recvCq, maxSendWr, maxRecvWr,
/// maxSendSge, maxRecvSge, maxInlineData)`
fn cm_id_create_queue_pair(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let id = id_arg(env, arguments)?.get()?.clone();
    let pd = pd_arg(env, arguments.get(1))?.get()?.clone();
    let send_cq = cq_arg(env, arguments.get(2), "sendCq")?.get()?.cq.clone();
    let recv_cq = cq_arg(env, arguments.get(3), "recvCq")?.get()?.cq.clone();
    let mut capabilities = sys::roce_qp_capabilities {
        max_send_wr: env.to_u32(arguments.get(4), "maxSendWr")?,
        max_recv_wr: env.to_u32(arguments.get(5), "maxRecvWr")?,
        max_send_sge: env.to_u32(arguments.get(6), "maxSendSge")?,
        max_recv_sge: env.to_u32(arguments.get(7), "maxRecvSge")?,
        max_inline_data: env.to_u32(arguments.get(8), "maxInlineData")?,
    };
    id.create_queue_pair(&pd, &send_cq, &recv_cq, &mut capabilities)?;
    wrap_queue_pair(env, id, &capabilities)
}

/// Reads `(responderResources, initiatorDepth, retryCount, rnrRetryCount,
/// privateData?)` starting at argument 1.
fn parameters_arg(env: Env, arguments: &Arguments) -> Result<sys::roce_connection_parameters> {
    let mut parameters = sys::roce_connection_parameters {
        responder_resources: env.to_integer(arguments.get(1), "responderResources", 255)? as u8,
        initiator_depth: env.to_integer(arguments.get(2), "initiatorDepth", 255)? as u8,
        retry_count: env.to_integer(arguments.get(3), "retryCount", 7)? as u8,
        rnr_retry_count: env.to_integer(arguments.get(4), "rnrRetryCount", 7)? as u8,
        ..Default::default()
    };
    let private_data = arguments.get(5);
    if !env.is_nullish(private_data)? {
        let (data, length) = env.to_bytes(private_data, "privateData")?;
        if length > sys::PRIVATE_DATA_MAX {
            return Err(crate::error::VerbsError::invalid(format!("privateData is longer than {} bytes", sys::PRIVATE_DATA_MAX)));
        }
        // SAFETY: data/length describe the caller's live buffer.
        parameters.private_data[..length].copy_from_slice(unsafe { std::slice::from_raw_parts(data, length) });
        parameters.private_data_len = length as u8;
    }
    Ok(parameters)
}

fn cm_id_connect(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let parameters = parameters_arg(env, arguments)?;
    id_arg(env, arguments)?.with(|id| id.connect(&parameters))?;
    env.undefined()
}

fn cm_id_accept(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let parameters = parameters_arg(env, arguments)?;
    id_arg(env, arguments)?.with(|id| id.accept(&parameters))?;
    env.undefined()
}

fn cm_id_reject(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let private_data = arguments.get(1);
    let bytes: Vec<u8> = if env.is_nullish(private_data)? {
        Vec::new()
    } else {
        let (data, length) = env.to_bytes(private_data, "privateData")?;
        // SAFETY: data/length describe the caller's live buffer.
        unsafe { std::slice::from_raw_parts(data, length) }.to_vec()
    };
    id_arg(env, arguments)?.with(|id| id.reject(&bytes))?;
    env.undefined()
}

fn cm_id_disconnect(env: Env, arguments: &Arguments) -> Result<napi_value> {
    id_arg(env, arguments)?.with(|id| id.disconnect())?;
    env.undefined()
}

fn cm_id_address(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let peer = env.to_bool(arguments.get(1), "peer")?;
    let address = id_arg(env, arguments)?.with(|id| id.address(peer))?;
    let object = env.object()?;
    env.set(object, "address", env.string(&address.host)?)?;
    env.set(object, "port", env.number(address.port as f64)?)?;
    Ok(object)
}

fn cm_id_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    if let Some(id) = id_arg(env, arguments)?.take() {
        // Destroy now even if queue pair handles still share the id.
        id.close();
    }
    env.undefined()
}
