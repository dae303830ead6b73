/**
 * What every thread knows about a connection: identity and addressing. Sent
 * once from the main thread to each channel thread that hosts one of its
 * channels (a structured-clone message), immutable afterwards.
 */
export interface ConnectionInfo {
  /** Endpoint-local id, never reused while the endpoint lives. */
  id: number;
  /** Slot of the connection's serial counter in the SerialTable. */
  serialSlot: number;
  epoch: number;
  /** The connection's cid with the channel bits clear. */
  cid: number;
  serviceId: number;
  securityIndex: number;
  /** We initiated the connection (client side). */
  isClient: boolean;
  peerAddress: string;
  peerPort: number;
}
