/**
 * Packet batches: how datagrams cross between the main thread and channel
 * workers. Many packets travel in one ArrayBuffer that is transferred (not
 * copied) with postMessage, so a busy loop turn costs one message per
 * worker, not one per packet.
 *
 *   | connectionId u32 | channel u8 | 0 u8 | length u16 | packet bytes | ... repeated
 *
 * Life: a batch is built by the sending thread, transferred, and read once
 * by the receiving thread; the sender never touches it again.
 */
import assert from 'node:assert/strict';

const ENTRY_HEADER_SIZE = 8;
/** A batch is flushed before it grows past this: bounds the memory one message pins. */
export const BATCH_BYTES_MAX = 256 * 1024;

export class PacketBatchWriter {
  private buffer = new ArrayBuffer(BATCH_BYTES_MAX);
  private bytes = new Uint8Array(this.buffer);
  private view = new DataView(this.buffer);
  private used = 0;
  count = 0;

  /** Returns false when the packet does not fit: flush first. */
  add(connectionId: number, channel: number, packet: Uint8Array): boolean {
    assert.ok(packet.byteLength <= 0xffff, 'a datagram fits a 16-bit length');
    if (this.used + ENTRY_HEADER_SIZE + packet.byteLength > BATCH_BYTES_MAX) return false;
    this.view.setUint32(this.used, connectionId);
    this.view.setUint8(this.used + 4, channel);
    this.view.setUint8(this.used + 5, 0);
    this.view.setUint16(this.used + 6, packet.byteLength);
    this.bytes.set(packet, this.used + ENTRY_HEADER_SIZE);
    this.used += ENTRY_HEADER_SIZE + packet.byteLength;
    this.count += 1;
    return true;
  }

  /** Hands over the filled bytes (to transfer) and starts a new buffer. */
  take(): ArrayBuffer {
    const filled = this.buffer.slice(0, this.used);
    this.used = 0;
    this.count = 0;
    return filled;
  }
}

export function* readPacketBatch(batch: ArrayBuffer): Generator<{ connectionId: number; channel: number; packet: Uint8Array }> {
  const view = new DataView(batch);
  let offset = 0;
  // Bounded by the batch length: every entry advances offset.
  while (offset + ENTRY_HEADER_SIZE <= batch.byteLength) {
    const length = view.getUint16(offset + 6);
    const start = offset + ENTRY_HEADER_SIZE;
    assert.ok(start + length <= batch.byteLength, 'batch entries are whole');
    yield { connectionId: view.getUint32(offset), channel: view.getUint8(offset + 4), packet: new Uint8Array(batch, start, length) };
    offset = start + length;
  }
}
