/**
 * The credit grant (RFC 8166 §3.3.1). Each credit is a Receive we keep posted,
 * so a grant never exceeds what is posted; it is never 0, which would leave the
 * requester unable to send the call that could raise it. Linux grants its whole
 * svcrdma_max_requests whatever is asked; we grant what is asked, up to what is
 * posted, so a requester asking for few is not told it may send many.
 */
import assert from 'node:assert';
import { MIN_CREDIT_GRANT } from '../protocol.js';

/**
 * @param requested rdma_credit of the call (uint32, may be 0)
 * @param postedReceives Receives the transport keeps posted for this connection
 * @returns the rdma_credit of the reply: in [1, postedReceives]
 */
export function grantCredits(requested: number, postedReceives: number): number {
  assert(Number.isInteger(postedReceives) && postedReceives >= MIN_CREDIT_GRANT, `posted receives ${postedReceives}`);
  return Math.min(Math.max(requested, MIN_CREDIT_GRANT), postedReceives);
}
