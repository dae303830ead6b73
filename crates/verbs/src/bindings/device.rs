//! `openDevice`, `listDevices`, `deviceQuery`, `deviceClose`.

use super::set_number;
use crate::device::Device;
use crate::error::{Result, VerbsError};
use crate::napi::function::{export, Arguments};
use crate::napi::handle::{unwrap, wrap, Handle};
use crate::napi::sys::napi_value;
use crate::napi::Env;
use std::sync::Arc;

pub(super) const KIND: &str = "Device";
/// Longest device name (IBV_SYSFS_NAME_MAX).
const DEVICE_NAME_MAX: usize = 64;

pub(super) fn register(env: Env, exports: napi_value) -> Result<()> {
    export(env, exports, "listDevices", list_devices)?;
    export(env, exports, "openDevice", open_device)?;
    export(env, exports, "deviceQuery", device_query)?;
    export(env, exports, "deviceClose", device_close)
}

/// The device inside a Device handle argument.
pub(super) fn device_arg<'a>(env: Env, value: napi_value) -> Result<&'a Handle<Arc<Device>>> {
    unwrap::<Arc<Device>>(env, value, "device", KIND)
}

/// Wraps a device, with its name on the handle.
fn wrap_device(env: Env, device: Arc<Device>) -> Result<napi_value> {
    let name = env.string(device.name())?;
    let handle = wrap(env, KIND, device)?;
    env.set(handle, "name", name)?;
    Ok(handle)
}

fn list_devices(env: Env, _arguments: &Arguments) -> Result<napi_value> {
    let names = Device::names();
    let array = env.array(names.len())?;
    for (index, name) in names.iter().enumerate() {
        env.set_element(array, index as u32, env.string(name)?)?;
    }
    Ok(array)
}

fn open_device(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let name = env.to_string(arguments.get(0), "name", DEVICE_NAME_MAX)?;
    wrap_device(env, Device::open(&name)?)
}

fn device_query(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let attributes = device_arg(env, arguments.get(0))?.with(|device| device.query())?;
    let object = env.object()?;
    env.set(object, "name", env.string(&attributes.name)?)?;
    env.set(object, "firmwareVersion", env.string(&attributes.firmware_version)?)?;
    env.set(object, "nodeGuid", env.string(&format!("{:016x}", attributes.node_guid))?)?;
    let numbers = [
        ("maxMrSize", attributes.max_mr_size as f64),
        ("maxQp", attributes.max_qp as f64),
        ("maxQpWr", attributes.max_qp_wr as f64),
        ("maxSge", attributes.max_sge as f64),
        ("maxCq", attributes.max_cq as f64),
        ("maxCqe", attributes.max_cqe as f64),
        ("maxMr", attributes.max_mr as f64),
        ("maxPd", attributes.max_pd as f64),
        ("maxQpRdAtom", attributes.max_qp_rd_atom as f64),
        ("maxQpInitRdAtom", attributes.max_qp_init_rd_atom as f64),
        ("physicalPortCount", attributes.physical_port_count as f64),
        ("portState", attributes.port_state as f64),
        ("activeMtu", attributes.active_mtu as f64),
        ("linkLayer", attributes.link_layer as f64),
        ("gidTableLength", attributes.gid_table_len as f64),
    ];
    for (name, value) in numbers {
        set_number(env, object, name, value)?;
    }
    Ok(object)
}

fn device_close(env: Env, arguments: &Arguments) -> Result<napi_value> {
    let handle = device_arg(env, arguments.get(0))?;
    if let Some(device) = handle.take() {
        if Arc::strong_count(&device) > 1 {
            handle.restore(device);
            return Err(VerbsError::from_errno(libc::EBUSY, "close the device's protection domains and completion queues first"));
        }
    }
    env.undefined()
}
