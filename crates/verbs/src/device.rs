//! An RDMA device, opened by name.
//!
//! Life: `Device::open` finds the device among librdmacm's devices (so its
//! context is the same one connection ids resolve to, which rdma_cm requires
//! of the PDs and CQs used with them). librdmacm owns that context for the
//! process's life, so dropping a `Device` releases nothing in rdma-core; the
//! `Arc<Device>` held by every PD and CQ keeps `close()` honest (EBUSY while
//! children are open). Thread-safe: rdma-core contexts are.

use crate::error::{check, Result, VerbsError};
use crate::sys;
use std::ffi::CStr;
use std::sync::Arc;

/// An open RDMA device.
#[derive(Debug)]
pub struct Device {
    context: *mut sys::ibv_context,
    name: String,
}

// SAFETY: an ibv_context may be used from any thread (rdma-core locks inside).
unsafe impl Send for Device {}
// SAFETY: as above; Device has no interior mutability of its own.
unsafe impl Sync for Device {}

/// What `Device::query` reports (device limits and port 1).
#[derive(Debug, Clone, Default)]
pub struct DeviceAttributes {
    pub name: String,
    pub firmware_version: String,
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

/// Calls `visit` with each of librdmacm's device contexts.
fn for_each_context(mut visit: impl FnMut(*mut sys::ibv_context)) -> Result<()> {
    let mut count = 0;
    // SAFETY: count is a valid slot; the list is freed below.
    let list = unsafe { sys::rdma_get_devices(&mut count) };
    if list.is_null() {
        // librdmacm fails this way when the host has no RDMA devices at all.
        let errno = sys::last_errno();
        return Err(VerbsError::from_errno(if errno == 0 { libc::ENODEV } else { errno }, "rdma_get_devices"));
    }
    for index in 0..count.max(0) as usize {
        // SAFETY: the list holds `count` valid context pointers.
        visit(unsafe { *list.add(index) });
    }
    // SAFETY: list came from rdma_get_devices; the contexts stay librdmacm's.
    unsafe { sys::rdma_free_devices(list) };
    Ok(())
}

/// The name of a device context ("rxe0").
pub fn context_name(context: *mut sys::ibv_context) -> String {
    // SAFETY: context is a live device context; the name is a NUL-terminated
    // string inside its ibv_device.
    unsafe { CStr::from_ptr(sys::roce_context_name(context)) }.to_string_lossy().into_owned()
}

fn c_text(bytes: &[libc::c_char]) -> String {
    // SAFETY: the shim NUL-terminates both fixed-size fields.
    unsafe { CStr::from_ptr(bytes.as_ptr()) }.to_string_lossy().into_owned()
}

impl Device {
    /// Names of the RDMA devices present (empty when there are none).
    pub fn names() -> Vec<String> {
        let mut names = Vec::new();
        let _ = for_each_context(|context| names.push(context_name(context)));
        names
    }

    /// Opens the device called `name`; `ENODEV` if there is none.
    pub fn open(name: &str) -> Result<Arc<Device>> {
        let mut found = None;
        let listed = for_each_context(|context| {
            if found.is_none() && context_name(context) == name {
                found = Some(context);
            }
        });
        match (found, listed) {
            (Some(context), _) => Ok(Arc::new(Device { context, name: name.to_string() })),
            (None, _) => Err(VerbsError::from_errno(
                libc::ENODEV,
                format!("no RDMA device named {name:?} (present: {:?})", Device::names()),
            )),
        }
    }

    /// The device a connection id resolved to.
    pub fn from_context(context: *mut sys::ibv_context) -> Arc<Device> {
        assert!(!context.is_null(), "a device context is never null");
        Arc::new(Device { context, name: context_name(context) })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw context, for the objects made on this device.
    pub fn context(&self) -> *mut sys::ibv_context {
        self.context
    }

    /// Device limits and the state of port 1.
    pub fn query(&self) -> Result<DeviceAttributes> {
        // SAFETY: all-zero is a valid value of this plain C struct.
        let mut raw: sys::roce_device_attributes = unsafe { std::mem::zeroed() };
        // SAFETY: the context is live; raw is a valid out struct.
        check(unsafe { sys::roce_query_device(self.context, &mut raw) }, format!("query {}", self.name))?;
        Ok(DeviceAttributes {
            name: c_text(&raw.name),
            firmware_version: c_text(&raw.firmware_version),
            node_guid: raw.node_guid,
            max_mr_size: raw.max_mr_size,
            max_qp: raw.max_qp,
            max_qp_wr: raw.max_qp_wr,
            max_sge: raw.max_sge,
            max_cq: raw.max_cq,
            max_cqe: raw.max_cqe,
            max_mr: raw.max_mr,
            max_pd: raw.max_pd,
            max_qp_rd_atom: raw.max_qp_rd_atom,
            max_qp_init_rd_atom: raw.max_qp_init_rd_atom,
            physical_port_count: raw.physical_port_count,
            port_state: raw.port_state,
            active_mtu: raw.active_mtu,
            link_layer: raw.link_layer,
            gid_table_len: raw.gid_table_len,
        })
    }
}
