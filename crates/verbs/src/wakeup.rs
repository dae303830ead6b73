//! A stop signal for native threads that sleep in `poll(2)`: an eventfd the
//! owner writes to, polled next to the file descriptor the thread waits on.
//! Created and signalled by the owner (JavaScript thread); read by the thread.

use crate::error::{Result, VerbsError};
use crate::sys::last_errno;
use std::sync::atomic::{AtomicBool, Ordering};

/// What `wait` saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// The watched descriptor is readable.
    Ready,
    /// `signal` was called.
    Stopped,
}

/// An eventfd-based stop signal.
pub struct Wakeup {
    fd: i32,
    stopped: AtomicBool,
}

impl Wakeup {
    /// A fresh, unsignalled wakeup.
    pub fn new() -> Result<Wakeup> {
        // SAFETY: plain syscall; the fd is closed in Drop.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(VerbsError::from_errno(last_errno(), "eventfd"));
        }
        Ok(Wakeup { fd, stopped: AtomicBool::new(false) })
    }

    /// Asks the thread to stop; it sees it at its next check or wait.
    pub fn signal(&self) {
        self.stopped.store(true, Ordering::Release);
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.fd, (&one as *const u64).cast(), 8) };
    }

    /// True once `signal` was called.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Sleeps until `fd` is readable or the wakeup is signalled.
    pub fn wait(&self, fd: i32) -> Woken {
        let mut fds = [
            libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 },
        ];
        loop {
            if self.is_stopped() {
                return Woken::Stopped;
            }
            // SAFETY: fds is a valid array of two pollfd.
            let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if rc < 0 && last_errno() == libc::EINTR {
                continue;
            }
            if self.is_stopped() || fds[1].revents != 0 {
                return Woken::Stopped;
            }
            if fds[0].revents != 0 {
                return Woken::Ready;
            }
        }
    }
}

impl Drop for Wakeup {
    fn drop(&mut self) {
        // SAFETY: fd is ours and closed once.
        unsafe { libc::close(self.fd) };
    }
}

/// Makes `fd` non-blocking so a thread can drain it until EAGAIN.
pub fn set_nonblocking(fd: i32) -> Result<()> {
    // SAFETY: fcntl on a descriptor we were handed by rdma-core.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(VerbsError::from_errno(last_errno(), "fcntl(O_NONBLOCK)"));
    }
    Ok(())
}
