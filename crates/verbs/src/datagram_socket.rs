//! DatagramSocket: a non-blocking UDP socket (IPv4, or IPv6 dual-stack)
//! read with `recvmmsg` into a bounded ring of preallocated slots and
//! written with `sendmmsg` from a second ring, so that one system call and
//! one JavaScript call serve a batch of datagrams instead of one each.
//!
//! Life: created by `bindings::datagram_socket` on a JavaScript thread,
//! owned by its handle (shared with the event-loop poll callback on that
//! same thread, never with another thread). `close` shuts the descriptor at
//! once; the slot memory (`RingMemory`) is shared with the JavaScript
//! ArrayBuffer over it and freed when the last of them goes.
//!
//! A socket may also be opened over a duplicate of another socket's
//! descriptor (`duplicate_descriptor` on the owning thread, `adopt` on
//! another): the same kernel socket, so datagrams leave from the same port,
//! with rings of its own (a sender reads nothing). Each thread then closes
//! only its own descriptor, never a number another thread may have reused.
//!
//! A socket may instead be the first of a *steered group* (`open_steered`):
//! it and `members` more sockets bound to the same address and port in one
//! SO_REUSEPORT group, with a classic BPF program the caller supplies that
//! picks, from each datagram's payload, which of them the kernel queues it
//! on (0 = this socket, k = member k). This socket keeps its own descriptor
//! of every member, so a member never leaves the group (which would renumber
//! the others) until this socket closes; threads read a member through a
//! duplicate (`duplicate_descriptor(k)`, `adopt`).
//!
//! Slot ownership: a receive slot belongs to JavaScript from the batch
//! callback that announces it until that callback returns (the next
//! `receive_batch` overwrites it); a send slot belongs to JavaScript until
//! it passes the slot's index range to `send_batch`, which has handed the
//! bytes to the kernel when it returns.

use crate::error::{Result, VerbsError};
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

/// Datagrams one `recvmmsg` takes, hence one JavaScript callback at most:
/// a burst of four calls' windows arrives in a few batches, and a batch
/// stays small enough that its callback does not hold the loop for long.
pub const RECEIVE_SLOTS: usize = 64;
/// Datagrams JavaScript may queue for one `sendmmsg`.
pub const SEND_SLOTS: usize = 64;
/// Largest datagram a slot holds. RxRPC jumbograms of 4 packets are 5 688
/// bytes, OpenAFS's largest packet 16 384; longer datagrams are reported
/// truncated and dropped by the caller.
pub const SLOT_BYTES: usize = 16_384;
/// Per-slot metadata: u32 length, u32 port, u32 family | truncated << 8,
/// u32 IPv6 scope id, then 16 address bytes (IPv4 in the first 4).
pub const META_BYTES: usize = 32;
/// Readable wakes are level-triggered: after this many full batches the
/// callback returns to the loop so timers and other sockets get their turn.
pub const BATCHES_PER_WAKE_MAX: usize = 4;

const META_TRUNCATED: u32 = 1 << 8;

/// The rings' bytes: receive data, send data, receive metadata, send metadata.
pub struct RingMemory {
    pointer: *mut u8,
    length: usize,
}

// SAFETY: the memory is a plain allocation; the one JavaScript thread that
// owns the socket is the only one that reads or writes it.
unsafe impl Send for RingMemory {}
unsafe impl Sync for RingMemory {}

pub const RECEIVE_DATA_OFFSET: usize = 0;
pub const SEND_DATA_OFFSET: usize = RECEIVE_SLOTS * SLOT_BYTES;
pub const RECEIVE_META_OFFSET: usize = SEND_DATA_OFFSET + SEND_SLOTS * SLOT_BYTES;
pub const SEND_META_OFFSET: usize = RECEIVE_META_OFFSET + RECEIVE_SLOTS * META_BYTES;
pub const RING_BYTES: usize = SEND_META_OFFSET + SEND_SLOTS * META_BYTES;

impl RingMemory {
    fn new() -> Result<RingMemory> {
        // SAFETY: a zeroed allocation, freed in Drop.
        let pointer = unsafe { libc::calloc(1, RING_BYTES) }.cast::<u8>();
        if pointer.is_null() {
            return Err(VerbsError::new("ERR_VERBS_NO_MEMORY", "datagram ring allocation failed"));
        }
        Ok(RingMemory { pointer, length: RING_BYTES })
    }

    pub fn pointer(&self) -> *mut u8 {
        self.pointer
    }

    pub fn length(&self) -> usize {
        self.length
    }

    fn meta(&self, offset: usize, slot: usize) -> *mut u32 {
        // SAFETY (for callers): in bounds by the slot asserts at each use.
        unsafe { self.pointer.add(offset + slot * META_BYTES).cast::<u32>() }
    }
}

impl Drop for RingMemory {
    fn drop(&mut self) {
        // SAFETY: allocated by calloc in new, freed once.
        unsafe { libc::free(self.pointer.cast()) };
    }
}

/// How a send batch went: datagrams handed to the kernel, and the rest.
pub struct SendOutcome {
    pub sent: usize,
    pub failed: usize,
}

/// Longest steering program: the kernel's BPF_MAXINSNS.
pub const STEERING_INSTRUCTIONS_MAX: usize = 4096;
/// A reuseport program that picks no socket (an index past any group), so
/// the kernel falls back to its 4-tuple hash: see `DatagramSocket::open`.
const HASH_ONLY_PROGRAM: [libc::sock_filter; 1] = [libc::sock_filter { code: (libc::BPF_RET | libc::BPF_K) as u16, jt: 0, jf: 0, k: u32::MAX }];
/// Members a steered group may have besides its first socket.
pub const STEERED_MEMBERS_MAX: usize = 64;

pub struct DatagramSocket {
    fd: i32,
    /// AF_INET or AF_INET6 (dual stack: IPv4 peers appear v4-mapped).
    family: i32,
    /// The other sockets of a steered group (index k - 1 = member k); empty otherwise.
    members: Vec<OwnedFd>,
    memory: std::sync::Arc<RingMemory>,
    receive_names: Box<[libc::sockaddr_in6; RECEIVE_SLOTS]>,
    receive_vectors: Box<[libc::iovec; RECEIVE_SLOTS]>,
    receive_headers: Box<[libc::mmsghdr; RECEIVE_SLOTS]>,
}

impl DatagramSocket {
    /// Binds `address:port` (port 0: any), with SO_REUSEPORT if asked and
    /// `buffer_bytes` socket buffers each way (Linux caps them at rmem_max/wmem_max).
    ///
    /// Port 0 with SO_REUSEPORT starts a group of its own: without more, the
    /// kernel may pick a port on which another socket of this user already
    /// has a reuseport group (a steered server's, another test's) and join
    /// it, so each would get the other's datagrams or none. A socket that
    /// carries a group before its bind conflicts with every socket already
    /// on a port, so it gets a free one; the group it carries has
    /// `HASH_ONLY_PROGRAM`, which leaves the choice among the sockets that
    /// join later (by this port, explicitly) to the kernel's 4-tuple hash, as
    /// a group without a program.
    pub fn open(address: IpAddr, port: u16, reuse_port: bool, buffer_bytes: usize) -> Result<DatagramSocket> {
        let program = (reuse_port && port == 0).then_some(HASH_ONLY_PROGRAM.as_slice());
        let fd = bound_descriptor(SocketAddr::new(address, port), reuse_port, buffer_bytes, program)?;
        DatagramSocket::over(fd)
    }

    /// Binds `address:port` (port 0: any) and then `members` more sockets to
    /// the port it got, all in one SO_REUSEPORT group steered by `program`
    /// (classic BPF run on each datagram's UDP payload; it returns the index
    /// of the socket to queue it on, in bind order: 0 this one, then the
    /// members). The program is attached before the first bind, which makes
    /// the group this socket's own: a port-0 bind never lands in another
    /// process's reuseport group. A result past the last member makes the
    /// kernel fall back to its 4-tuple hash, so the program must not return one.
    pub fn open_steered(address: IpAddr, port: u16, buffer_bytes: usize, program: &[libc::sock_filter], members: usize) -> Result<DatagramSocket> {
        if program.is_empty() || program.len() > STEERING_INSTRUCTIONS_MAX {
            return Err(VerbsError::invalid(format!("a steering program has 1..={STEERING_INSTRUCTIONS_MAX} instructions, got {}", program.len())));
        }
        if members == 0 || members > STEERED_MEMBERS_MAX {
            return Err(VerbsError::invalid(format!("a steered group has 1..={STEERED_MEMBERS_MAX} members, got {members}")));
        }
        let mut socket = DatagramSocket::over(bound_descriptor(SocketAddr::new(address, port), true, buffer_bytes, Some(program))?)?;
        let bound = socket.local_address()?;
        for _ in 0..members {
            socket.members.push(bound_descriptor(bound, true, buffer_bytes, None)?);
        }
        Ok(socket)
    }

    /// A socket (rings, receive headers) over a bound UDP descriptor it owns from here on.
    fn over(fd: OwnedFd) -> Result<DatagramSocket> {
        let mut socket = DatagramSocket {
            fd: fd.into_raw_fd(),
            family: libc::AF_UNSPEC,
            members: Vec::new(),
            memory: std::sync::Arc::new(RingMemory::new()?),
            // SAFETY: all-zero is a valid value of these C structs.
            receive_names: Box::new(unsafe { zeroed() }),
            receive_vectors: Box::new(unsafe { zeroed() }),
            receive_headers: Box::new(unsafe { zeroed() }),
        };
        socket.family = if socket.bound_as_ipv6()? { libc::AF_INET6 } else { libc::AF_INET };
        socket.prepare_receive_headers();
        Ok(socket)
    }

    pub fn fd(&self) -> i32 {
        self.fd
    }

    /// Sockets in its steered group besides this one (0 when not steered).
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// A new descriptor (close-on-exec) of this socket (`member` 0) or of
    /// member `member` of its steered group, owned by the caller until a
    /// socket adopts it.
    pub fn duplicate_descriptor(&self, member: usize) -> Result<i32> {
        self.check_open()?;
        let fd = match member {
            0 => self.fd,
            k => self.members.get(k - 1).ok_or_else(|| VerbsError::invalid(format!("no member {k} in a group of {}", self.members.len())))?.as_raw_fd(),
        };
        // SAFETY: fcntl on a descriptor we own and keep open.
        let duplicate = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        if duplicate < 0 {
            return Err(last_error("fcntl(F_DUPFD_CLOEXEC)"));
        }
        Ok(duplicate)
    }

    /// A socket over `fd` (a duplicate another thread made), which it owns
    /// from here on (closed with it, also when this fails). `fd` must be a
    /// bound UDP socket's descriptor.
    pub fn adopt(fd: i32) -> Result<DatagramSocket> {
        // SAFETY: the caller hands over `fd`; OwnedFd closes it on every failure below.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut kind: i32 = 0;
        let mut length = size_of::<i32>() as libc::socklen_t;
        // SAFETY: kind has room for the int SO_TYPE reports.
        if unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_TYPE, (&mut kind as *mut i32).cast(), &mut length) } != 0 {
            return Err(last_error("getsockopt(SO_TYPE)"));
        }
        if kind != libc::SOCK_DGRAM {
            return Err(VerbsError::invalid(format!("descriptor {fd} is not a datagram socket")));
        }
        DatagramSocket::over(owned)
    }

    /// True when the socket itself is AF_INET6 (a dual-stack socket reports IPv4 peers v4-mapped).
    fn bound_as_ipv6(&self) -> Result<bool> {
        // SAFETY: zeroed sockaddr storage large enough for either family.
        let mut name: libc::sockaddr_in6 = unsafe { zeroed() };
        let mut length = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        // SAFETY: name has `length` bytes of room.
        if unsafe { libc::getsockname(self.fd, (&mut name as *mut libc::sockaddr_in6).cast(), &mut length) } != 0 {
            return Err(last_error("getsockname"));
        }
        Ok(name.sin6_family == libc::AF_INET6 as libc::sa_family_t)
    }

    pub fn memory(&self) -> &std::sync::Arc<RingMemory> {
        &self.memory
    }

    /// The bound address and port.
    pub fn local_address(&self) -> Result<SocketAddr> {
        self.check_open()?;
        // SAFETY: zeroed sockaddr storage large enough for either family.
        let mut name: libc::sockaddr_in6 = unsafe { zeroed() };
        let mut length = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
        // SAFETY: name has `length` bytes of room.
        if unsafe { libc::getsockname(self.fd, (&mut name as *mut libc::sockaddr_in6).cast(), &mut length) } != 0 {
            return Err(last_error("getsockname"));
        }
        Ok(decode_address(&name).0)
    }

    /// Reads up to RECEIVE_SLOTS datagrams into slots 0.. and their metadata;
    /// 0 when nothing is waiting.
    pub fn receive_batch(&mut self) -> Result<usize> {
        self.check_open()?;
        for index in 0..RECEIVE_SLOTS {
            self.receive_headers[index].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            self.receive_headers[index].msg_hdr.msg_flags = 0;
        }
        let count = loop {
            // SAFETY: every header points into our boxes and the ring, sized as declared.
            let rc = unsafe { libc::recvmmsg(self.fd, self.receive_headers.as_mut_ptr(), RECEIVE_SLOTS as u32, libc::MSG_DONTWAIT, std::ptr::null_mut()) };
            if rc >= 0 {
                break rc as usize;
            }
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return Ok(0),
                other => return Err(VerbsError::from_errno(other, "recvmmsg")),
            }
        };
        for slot in 0..count {
            let header = &self.receive_headers[slot];
            let (peer, scope) = decode_address(&self.receive_names[slot]);
            let truncated = if header.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 { META_TRUNCATED } else { 0 };
            write_meta(self.memory.meta(RECEIVE_META_OFFSET, slot), header.msg_len.min(SLOT_BYTES as u32), peer, scope, truncated);
        }
        Ok(count)
    }

    /// Sends send slots 0..count as their metadata describes. A datagram the
    /// kernel refuses (bad address, ICMP error surfacing, full buffer) is
    /// counted failed and the rest still go: UDP promises no more.
    pub fn send_batch(&mut self, count: usize) -> Result<SendOutcome> {
        self.check_open()?;
        assert!(count <= SEND_SLOTS, "send batch of {count} beyond SEND_SLOTS");
        // SAFETY: all-zero is a valid value of these C structs.
        let mut names: [libc::sockaddr_in6; SEND_SLOTS] = unsafe { zeroed() };
        let mut vectors: [libc::iovec; SEND_SLOTS] = unsafe { zeroed() };
        let mut headers: [libc::mmsghdr; SEND_SLOTS] = unsafe { zeroed() };
        let mut ready = 0usize;
        let mut failed = 0usize;
        for slot in 0..count {
            let Some((length, name, name_length)) = self.send_slot(slot) else {
                failed += 1;
                continue;
            };
            names[ready] = name;
            // SAFETY: slot < SEND_SLOTS, so the slot lies inside the ring.
            vectors[ready] = libc::iovec { iov_base: unsafe { self.memory.pointer.add(SEND_DATA_OFFSET + slot * SLOT_BYTES) }.cast(), iov_len: length };
            headers[ready].msg_hdr.msg_name = (&mut names[ready] as *mut libc::sockaddr_in6).cast();
            headers[ready].msg_hdr.msg_namelen = name_length;
            headers[ready].msg_hdr.msg_iov = &mut vectors[ready];
            headers[ready].msg_hdr.msg_iovlen = 1;
            ready += 1;
        }
        let mut sent = 0usize;
        let mut start = 0usize;
        // Every turn but an interrupted one moves `start` forward: at most `ready` turns.
        while start < ready {
            // SAFETY: headers[start..ready] point into live locals and the ring.
            let rc = unsafe { libc::sendmmsg(self.fd, headers.as_mut_ptr().add(start), (ready - start) as u32, libc::MSG_DONTWAIT) };
            if rc > 0 {
                sent += rc as usize;
                start += rc as usize;
            } else if errno() != libc::EINTR {
                // sendmmsg reports an error only for the first datagram: skip it.
                failed += 1;
                start += 1;
            }
        }
        Ok(SendOutcome { sent, failed })
    }

    pub fn close(&mut self) {
        self.members.clear();
        if self.fd >= 0 {
            // SAFETY: our descriptor, closed once.
            unsafe { libc::close(self.fd) };
            self.fd = -1;
        }
    }

    /// Slot `slot`'s length and destination, or None when its metadata is invalid.
    fn send_slot(&self, slot: usize) -> Option<(usize, libc::sockaddr_in6, libc::socklen_t)> {
        let meta = self.memory.meta(SEND_META_OFFSET, slot);
        // SAFETY: slot < SEND_SLOTS: the metadata words lie inside the ring.
        let (length, port, family) = unsafe { (*meta as usize, *meta.add(1), *meta.add(2)) };
        if length > SLOT_BYTES || port == 0 || port > u16::MAX as u32 {
            return None;
        }
        // SAFETY: the 16 address bytes follow the four words, inside the ring.
        let bytes: [u8; 16] = unsafe { *meta.add(4).cast::<[u8; 16]>() };
        let ip = match family {
            4 => IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]]),
            6 => IpAddr::from(bytes),
            _ => return None,
        };
        let (name, name_length) = socket_address(SocketAddr::new(ip, port as u16), self.family).ok()?;
        Some((length, name, name_length))
    }

    fn prepare_receive_headers(&mut self) {
        for slot in 0..RECEIVE_SLOTS {
            // SAFETY: slot < RECEIVE_SLOTS, so the slot lies inside the ring.
            self.receive_vectors[slot] = libc::iovec { iov_base: unsafe { self.memory.pointer.add(RECEIVE_DATA_OFFSET + slot * SLOT_BYTES) }.cast(), iov_len: SLOT_BYTES };
            let header = &mut self.receive_headers[slot].msg_hdr;
            header.msg_name = (&mut self.receive_names[slot] as *mut libc::sockaddr_in6).cast();
            header.msg_iov = &mut self.receive_vectors[slot];
            header.msg_iovlen = 1;
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.fd < 0 {
            return Err(VerbsError::closed("datagram socket"));
        }
        Ok(())
    }
}

impl Drop for DatagramSocket {
    fn drop(&mut self) {
        self.close();
    }
}

/// A UDP socket bound to `address` (dual stack for IPv6), with SO_REUSEPORT
/// if asked and `program` attached as the reuseport group's steering before
/// the bind.
fn bound_descriptor(address: SocketAddr, reuse_port: bool, buffer_bytes: usize, program: Option<&[libc::sock_filter]>) -> Result<OwnedFd> {
    let family = if address.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    // SAFETY: plain socket(2).
    let raw = unsafe { libc::socket(family, libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(last_error("socket"));
    }
    // SAFETY: a descriptor we just created; OwnedFd closes it on every failure below.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let set = |level: i32, name: i32, value: i32, what: &str| -> Result<()> {
        // SAFETY: value is an int, as every option set here expects.
        let rc = unsafe { libc::setsockopt(raw, level, name, (&value as *const i32).cast(), size_of::<i32>() as libc::socklen_t) };
        if rc != 0 {
            return Err(last_error(what));
        }
        Ok(())
    };
    if family == libc::AF_INET6 {
        set(libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0, "IPV6_V6ONLY")?;
    }
    if reuse_port {
        set(libc::SOL_SOCKET, libc::SO_REUSEPORT, 1, "SO_REUSEPORT")?;
    }
    let buffer = i32::try_from(buffer_bytes).unwrap_or(i32::MAX);
    set(libc::SOL_SOCKET, libc::SO_RCVBUF, buffer, "SO_RCVBUF")?;
    set(libc::SOL_SOCKET, libc::SO_SNDBUF, buffer, "SO_SNDBUF")?;
    if let Some(program) = program {
        let filter = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr().cast_mut() };
        // SAFETY: filter points at `len` instructions that outlive the call (the kernel copies them).
        let rc = unsafe {
            libc::setsockopt(raw, libc::SOL_SOCKET, libc::SO_ATTACH_REUSEPORT_CBPF, (&filter as *const libc::sock_fprog).cast(), size_of::<libc::sock_fprog>() as libc::socklen_t)
        };
        if rc != 0 {
            return Err(last_error("SO_ATTACH_REUSEPORT_CBPF"));
        }
    }
    let (name, length) = socket_address(address, family)?;
    // SAFETY: name is a sockaddr of `length` bytes.
    if unsafe { libc::bind(raw, (&name as *const libc::sockaddr_in6).cast(), length) } != 0 {
        return Err(last_error("bind"));
    }
    Ok(fd)
}

/// `address` as a sockaddr for a socket of `family` (IPv4 peers of an IPv6
/// socket become v4-mapped); fails for an IPv6 peer of an IPv4 socket.
fn socket_address(address: SocketAddr, family: i32) -> Result<(libc::sockaddr_in6, libc::socklen_t)> {
    // SAFETY: all-zero is a valid sockaddr_in6 (and, reinterpreted, sockaddr_in).
    let mut name: libc::sockaddr_in6 = unsafe { zeroed() };
    match (address, family) {
        (SocketAddr::V4(v4), libc::AF_INET) => {
            // SAFETY: sockaddr_in fits in sockaddr_in6's storage.
            let ipv4 = unsafe { &mut *(&mut name as *mut libc::sockaddr_in6).cast::<libc::sockaddr_in>() };
            ipv4.sin_family = libc::AF_INET as libc::sa_family_t;
            ipv4.sin_port = v4.port().to_be();
            ipv4.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            Ok((name, size_of::<libc::sockaddr_in>() as libc::socklen_t))
        }
        (SocketAddr::V4(_), _) | (SocketAddr::V6(_), libc::AF_INET6) => {
            let (ip, scope) = match address {
                SocketAddr::V4(v4) => (v4.ip().to_ipv6_mapped(), 0),
                SocketAddr::V6(v6) => (*v6.ip(), v6.scope_id()),
            };
            name.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            name.sin6_port = address.port().to_be();
            name.sin6_addr.s6_addr = ip.octets();
            name.sin6_scope_id = scope;
            Ok((name, size_of::<libc::sockaddr_in6>() as libc::socklen_t))
        }
        (SocketAddr::V6(_), _) => Err(VerbsError::new("ERR_VERBS_ADDRESS_FAMILY", "an IPv6 peer on an IPv4 socket")),
    }
}

/// A received sockaddr as an address (v4-mapped IPv6 turned back into IPv4) and scope id.
fn decode_address(name: &libc::sockaddr_in6) -> (SocketAddr, u32) {
    if name.sin6_family == libc::AF_INET as libc::sa_family_t {
        // SAFETY: the kernel wrote a sockaddr_in here.
        let ipv4 = unsafe { &*(name as *const libc::sockaddr_in6).cast::<libc::sockaddr_in>() };
        return (SocketAddr::new(IpAddr::from(ipv4.sin_addr.s_addr.to_ne_bytes()), u16::from_be(ipv4.sin_port)), 0);
    }
    let ip = std::net::Ipv6Addr::from(name.sin6_addr.s6_addr);
    let port = u16::from_be(name.sin6_port);
    match ip.to_ipv4_mapped() {
        Some(v4) => (SocketAddr::new(IpAddr::V4(v4), port), 0),
        None => (SocketAddr::new(IpAddr::V6(ip), port), name.sin6_scope_id),
    }
}

fn write_meta(meta: *mut u32, length: u32, peer: SocketAddr, scope: u32, flags: u32) {
    let (family, bytes) = match peer.ip() {
        IpAddr::V4(v4) => {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&v4.octets());
            (4u32, bytes)
        }
        IpAddr::V6(v6) => (6u32, v6.octets()),
    };
    // SAFETY: meta points at META_BYTES inside the ring (callers pass a slot in range).
    unsafe {
        *meta = length;
        *meta.add(1) = u32::from(peer.port());
        *meta.add(2) = family | flags;
        *meta.add(3) = scope;
        *meta.add(4).cast::<[u8; 16]>() = bytes;
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn last_error(what: &str) -> VerbsError {
    VerbsError::from_errno(errno(), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_send_slot(socket: &DatagramSocket, slot: usize, payload: &[u8], to: SocketAddr) {
        // SAFETY: test slots are in range.
        unsafe { std::ptr::copy_nonoverlapping(payload.as_ptr(), socket.memory.pointer.add(SEND_DATA_OFFSET + slot * SLOT_BYTES), payload.len()) };
        write_meta(socket.memory.meta(SEND_META_OFFSET, slot), payload.len() as u32, to, 0, 0);
    }

    #[test]
    fn a_batch_sent_to_itself_arrives_in_order_with_its_sender_and_a_bad_slot_is_skipped() {
        for address in ["127.0.0.1", "::1"] {
            let mut socket = DatagramSocket::open(address.parse().unwrap(), 0, false, 1 << 20).unwrap();
            let local = socket.local_address().unwrap();
            write_send_slot(&socket, 0, b"first", local);
            // Port 0 is not a destination: that slot fails, the others still go.
            write_send_slot(&socket, 1, b"bad", SocketAddr::new(local.ip(), 0));
            write_send_slot(&socket, 2, b"second", local);
            let outcome = socket.send_batch(3).unwrap();
            assert_eq!((outcome.sent, outcome.failed), (2, 1));
            let count = socket.receive_batch().unwrap();
            assert_eq!(count, 2);
            for (slot, expected) in [b"first".as_slice(), b"second".as_slice()].iter().enumerate() {
                let meta = socket.memory.meta(RECEIVE_META_OFFSET, slot);
                // SAFETY: slot < count <= RECEIVE_SLOTS.
                let (length, port, family) = unsafe { (*meta as usize, *meta.add(1), *meta.add(2)) };
                assert_eq!(port, u32::from(local.port()));
                assert_eq!(family, if local.is_ipv4() { 4 } else { 6 });
                // SAFETY: the slot holds `length` received bytes.
                let bytes = unsafe { std::slice::from_raw_parts(socket.memory.pointer.add(slot * SLOT_BYTES), length) };
                assert_eq!(bytes, *expected);
            }
            assert_eq!(socket.receive_batch().unwrap(), 0);
        }
    }

    #[test]
    fn a_sender_over_a_duplicate_sends_from_the_same_port_and_outlives_the_original() {
        for address in ["127.0.0.1", "::1"] {
            let mut receiver = DatagramSocket::open(address.parse().unwrap(), 0, false, 1 << 16).unwrap();
            let mut original = DatagramSocket::open(address.parse().unwrap(), 0, false, 1 << 16).unwrap();
            let mut sender = DatagramSocket::adopt(original.duplicate_descriptor(0).unwrap()).unwrap();
            assert_eq!(sender.local_address().unwrap(), original.local_address().unwrap());
            original.close();
            write_send_slot(&sender, 0, b"from the worker", receiver.local_address().unwrap());
            assert_eq!(sender.send_batch(1).unwrap().sent, 1);
            assert_eq!(receiver.receive_batch().unwrap(), 1);
            let meta = receiver.memory.meta(RECEIVE_META_OFFSET, 0);
            // SAFETY: slot 0 was just received.
            let port = unsafe { *meta.add(1) };
            assert_eq!(port, u32::from(sender.local_address().unwrap().port()));
        }
    }

    /// filter.h's BPF_A (return the accumulator), which this libc lacks.
    const BPF_A: u32 = 0x10;

    /// Steers by the payload's first byte: that member, or 0 when past the last.
    fn first_byte_program(members: u32) -> Vec<libc::sock_filter> {
        let instruction = |code: u32, jt: u8, jf: u8, k: u32| libc::sock_filter { code: code as u16, jt, jf, k };
        vec![
            instruction(libc::BPF_LD | libc::BPF_B | libc::BPF_ABS, 0, 0, 0),
            instruction(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K, 0, 1, members),
            instruction(libc::BPF_RET | libc::BPF_K, 0, 0, 0),
            instruction(libc::BPF_RET | BPF_A, 0, 0, 0),
        ]
    }

    #[test]
    fn a_steered_group_queues_each_datagram_on_the_member_its_program_picks_and_keeps_members_when_duplicates_close() {
        for address in ["127.0.0.1", "::"] {
            let mut first = DatagramSocket::open_steered(address.parse().unwrap(), 0, 1 << 16, &first_byte_program(3), 3).unwrap();
            assert_eq!(first.member_count(), 3);
            // Each member read through a duplicate, as a worker thread does; the originals stay with `first`.
            let mut readers: Vec<DatagramSocket> = (0..=3).map(|member| DatagramSocket::adopt(first.duplicate_descriptor(member).unwrap()).unwrap()).collect();
            let port = first.local_address().unwrap().port();
            let to = SocketAddr::new(if address == "::" { "::1".parse().unwrap() } else { "127.0.0.1".parse().unwrap() }, port);
            let mut client = DatagramSocket::open(to.ip(), 0, false, 1 << 16).unwrap();
            for (slot, byte) in [0u8, 1, 2, 3, 1, 9].iter().enumerate() {
                write_send_slot(&client, slot, &[*byte, 0x55], to);
            }
            assert_eq!(client.send_batch(6).unwrap().sent, 6);
            let first_bytes = |socket: &mut DatagramSocket| -> Vec<u8> {
                let count = socket.receive_batch().unwrap();
                // SAFETY: slots 0..count were just received.
                (0..count).map(|slot| unsafe { *socket.memory.pointer.add(slot * SLOT_BYTES) }).collect()
            };
            assert_eq!(first_bytes(&mut readers[0]), vec![0, 9]);
            assert_eq!(first_bytes(&mut readers[1]), vec![1, 1]);
            assert_eq!(first_bytes(&mut readers[2]), vec![2]);
            assert_eq!(first_bytes(&mut readers[3]), vec![3]);
            // A reader going away (a worker dying) leaves the member in the group at its index.
            readers[1].close();
            let mut replacement = DatagramSocket::adopt(first.duplicate_descriptor(1).unwrap()).unwrap();
            write_send_slot(&client, 0, &[1, 0x55], to);
            write_send_slot(&client, 1, &[3, 0x55], to);
            assert_eq!(client.send_batch(2).unwrap().sent, 2);
            assert_eq!(first_bytes(&mut replacement), vec![1]);
            assert_eq!(first_bytes(&mut readers[3]), vec![3]);
            assert!(first.duplicate_descriptor(4).is_err());
            first.close();
        }
    }

    #[test]
    fn a_reuseport_socket_on_port_0_starts_its_own_group_which_later_sockets_join_by_its_port() {
        for address in ["127.0.0.1", "::1"] {
            let ip: IpAddr = address.parse().unwrap();
            let mut group = DatagramSocket::open(ip, 0, true, 1 << 16).unwrap();
            let port = group.local_address().unwrap().port();
            let detach = |socket: &DatagramSocket| {
                let none = 0i32;
                // SAFETY: the option takes (and ignores) an int; it fails with ENOENT when the socket's group has no program.
                unsafe { libc::setsockopt(socket.fd, libc::SOL_SOCKET, libc::SO_DETACH_REUSEPORT_BPF, (&none as *const i32).cast(), size_of::<i32>() as libc::socklen_t) }
            };
            // A socket that carries its group into the bind, as a port-0 reuseport one does, cannot
            // land on a port in use: the kernel's port-0 choice skips every such port.
            assert!(bound_descriptor(SocketAddr::new(ip, port), true, 1 << 16, Some(&HASH_ONLY_PROGRAM)).is_err());
            // Joining by the port still works, and the kernel's hash spreads peers over the members.
            let mut joined = DatagramSocket::open(ip, port, true, 1 << 16).unwrap();
            let to = SocketAddr::new(ip, port);
            let mut clients: Vec<DatagramSocket> = (0..16).map(|_| DatagramSocket::open(ip, 0, false, 1 << 16).unwrap()).collect();
            for client in &mut clients {
                write_send_slot(client, 0, b"spread", to);
                assert_eq!(client.send_batch(1).unwrap().sent, 1);
            }
            let (first, second) = (group.receive_batch().unwrap(), joined.receive_batch().unwrap());
            assert_eq!(first + second, 16);
            assert!(first > 0 && second > 0, "16 peers all hashed to one member: {first} / {second}");
            // The port-0 socket carried its group (with the hash-only program) into its bind.
            assert_eq!(detach(&group), 0);
            let mut explicit = DatagramSocket::open(ip, 0, false, 1 << 16).unwrap();
            assert_ne!(detach(&explicit), 0, "a socket outside any group has no program to detach");
            explicit.close();
        }
    }

    #[test]
    fn a_steered_group_refuses_an_empty_program_and_no_members() {
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(DatagramSocket::open_steered(address, 0, 1 << 16, &[], 1).is_err());
        assert!(DatagramSocket::open_steered(address, 0, 1 << 16, &first_byte_program(1), 0).is_err());
    }

    #[test]
    fn adopting_a_descriptor_that_is_not_a_datagram_socket_fails_and_closes_it() {
        let mut pipe = [0i32; 2];
        // SAFETY: pipe fills two descriptors.
        assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
        assert!(DatagramSocket::adopt(pipe[0]).is_err());
        // The failed adoption closed it: the descriptor is no longer open.
        // SAFETY: F_GETFD only queries.
        assert_eq!(unsafe { libc::fcntl(pipe[0], libc::F_GETFD) }, -1);
        // SAFETY: our own descriptor, closed once.
        unsafe { libc::close(pipe[1]) };
    }

    #[test]
    fn a_closed_socket_refuses_work_instead_of_touching_a_stale_descriptor() {
        let mut socket = DatagramSocket::open("127.0.0.1".parse().unwrap(), 0, false, 1 << 16).unwrap();
        socket.close();
        assert!(socket.receive_batch().is_err());
        assert!(socket.send_batch(0).is_err());
    }
}
