//! The transport header of a plain call, recognised natively when a worker
//! takes the call: RDMA_MSG, version 1, no Read list, no Write list, no Reply
//! chunk, an inline RPC message behind it (RFC 8166 §4). Only the xid and the
//! credits vary in its 28 bytes.
//!
//! Why: nearly every call that carries no bulk data (NULL, GETATTR, LOOKUP,
//! ...) has this header, and decoding it in JavaScript cost a decoder's
//! objects per RPC on the worker. The take leaves the xid and the credits
//! asked in the seat's mailbox (service_seat.rs), and the worker answers with
//! the equally fixed reply header. Anything else — chunks, another procedure
//! or version, a header without a body, fewer than 28 bytes — is not plain:
//! the worker's full decoder (packages/svcrdma, src/header/decode.ts) checks
//! it and answers or rejects it as before.
//!
//! Pure: reads the bytes it is given (a Receive slot the taking worker owns).

/// Bytes of a plain call's transport header (Linux's RPCRDMA_HDRLEN_MIN):
/// xid, version, credits, procedure, then the three empty lists.
pub const PLAIN_HEADER_BYTES: usize = 28;
/// The only version of RPC-over-RDMA served (RFC 8166).
const RPCRDMA_VERSION: u32 = 1;
/// rdma_proc of a call with an inline RPC message.
const RDMA_MSG: u32 = 0;

/// What a plain call's header says besides its fixed words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainCallHeader {
    pub xid: u32,
    /// The credits the requester asked for (rdma_credit, any u32).
    pub credits: u32,
}

/// The header of `received` if it is plain (see the top), else None.
pub fn plain_call_header(received: &[u8]) -> Option<PlainCallHeader> {
    // A plain call has an RPC message behind its header (an empty one is the decoder's to reject).
    if received.len() <= PLAIN_HEADER_BYTES {
        return None;
    }
    let word = |index: usize| u32::from_be_bytes(received[index * 4..index * 4 + 4].try_into().expect("4 bytes"));
    // Words 4, 5, 6: the Read list, Write list and Reply chunk discriminators, all "absent".
    let plain = word(1) == RPCRDMA_VERSION && word(3) == RDMA_MSG && word(4) == 0 && word(5) == 0 && word(6) == 0;
    plain.then(|| PlainCallHeader { xid: word(0), credits: word(2) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(words: [u32; 7], body_bytes: usize) -> Vec<u8> {
        let mut bytes: Vec<u8> = words.iter().flat_map(|word| word.to_be_bytes()).collect();
        bytes.resize(bytes.len() + body_bytes, 0xaa);
        bytes
    }

    #[test]
    fn an_rdma_msg_without_chunks_is_plain_and_gives_its_xid_and_credits() {
        let received = header([0xdead_beef, 1, 32, 0, 0, 0, 0], 40);
        assert_eq!(plain_call_header(&received), Some(PlainCallHeader { xid: 0xdead_beef, credits: 32 }));
    }

    #[test]
    fn every_other_header_is_left_to_the_full_decoder() {
        let plain = [7, 1, 32, 0, 0, 0, 0];
        for (word, value, what) in [(1, 2, "version 2"), (3, 1, "RDMA_NOMSG"), (3, 2, "RDMA_MSGP"), (3, 4, "RDMA_ERROR"), (4, 1, "a Read list"), (5, 1, "a Write list"), (6, 1, "a Reply chunk"), (4, 2, "a bad discriminator")] {
            let mut words = plain;
            words[word] = value;
            assert_eq!(plain_call_header(&header(words, 40)), None, "{what}");
        }
        assert_eq!(plain_call_header(&header(plain, 0)), None, "no RPC message behind the header");
        assert_eq!(plain_call_header(&header(plain, 40)[..20]), None, "fewer than 28 bytes");
        assert_eq!(plain_call_header(&[]), None);
    }
}
