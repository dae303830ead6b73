/**
 * The per-thread timer wheel that carries every call's deadlines: entries
 * fire once their deadline passed (never before, at most a few ticks after),
 * move when rescheduled, stay silent when cancelled, and the wheel holds no
 * interval from the first tick after it is empty (but keeps its one interval
 * while calls come and go back to back).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TICK_MS, TimerWheel, type WheelEntry } from '../dist/channel/timer-wheel.js';

class Recorder implements WheelEntry {
  wheelSlot = -1;
  wheelAtMs = Number.POSITIVE_INFINITY;
  wheelPrevious: WheelEntry | undefined = undefined;
  wheelNext: WheelEntry | undefined = undefined;
  readonly firedAtMs: number[] = [];
  onWheelTimer(): void {
    this.firedAtMs.push(performance.now());
  }
}

// The wheel's clock and interval are faked: the tests assert which tick fires what, not how
// punctually a loaded machine runs a 2 ms interval.
const settle = async (ms: number) => {
  await vi.advanceTimersByTimeAsync(ms);
};

describe('TimerWheel', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('fires an entry once, after its deadline', async () => {
    const wheel = new TimerWheel();
    const entry = new Recorder();
    const deadline = performance.now() + 15;
    wheel.schedule(entry, deadline);
    expect(wheel.size).toBe(1);
    await settle(60);
    expect(entry.firedAtMs).toHaveLength(1);
    expect(entry.firedAtMs[0]!).toBeGreaterThanOrEqual(deadline);
    expect(wheel.size).toBe(0);
    expect(entry.wheelSlot).toBe(-1);
  });

  it('moves a rescheduled entry and never fires a cancelled one', async () => {
    const wheel = new TimerWheel();
    const moved = new Recorder();
    const cancelled = new Recorder();
    const now = performance.now();
    wheel.schedule(moved, now + 5);
    wheel.schedule(moved, now + 40);
    wheel.schedule(cancelled, now + 5);
    wheel.cancel(cancelled);
    expect(wheel.size).toBe(1);
    await settle(20);
    expect(moved.firedAtMs).toHaveLength(0);
    await settle(60);
    expect(moved.firedAtMs).toHaveLength(1);
    expect(moved.firedAtMs[0]!).toBeGreaterThanOrEqual(now + 40);
    expect(cancelled.firedAtMs).toHaveLength(0);
  });

  it('keeps the entries sharing a slot apart: a cancel or move at its head, middle or tail leaves the others due', async () => {
    const wheel = new TimerWheel();
    const entries = Array.from({ length: 5 }, () => new Recorder());
    const now = performance.now();
    for (const entry of entries) wheel.schedule(entry, now + 10);
    const [head, second, middle, fourth, tail] = entries as [Recorder, Recorder, Recorder, Recorder, Recorder];
    wheel.cancel(middle);
    wheel.schedule(head, now + 50);
    wheel.cancel(tail);
    wheel.schedule(tail, now + 10);
    expect(wheel.size).toBe(4);
    await settle(30);
    expect(entries.map((entry) => entry.firedAtMs.length)).toEqual([0, 1, 0, 1, 1]);
    expect([second, fourth, tail].every((entry) => entry.wheelSlot === -1)).toBe(true);
    await settle(60);
    expect(head.firedAtMs).toHaveLength(1);
    expect(middle.firedAtMs).toHaveLength(0);
    expect(wheel.size).toBe(0);
  });

  it('keeps a deadline beyond one revolution of the wheel until it is due', async () => {
    const wheel = new TimerWheel();
    const far = new Recorder();
    const revolutionMs = 1024 * TICK_MS;
    const deadline = performance.now() + revolutionMs + 30;
    wheel.schedule(far, deadline);
    await settle(revolutionMs / 2);
    expect(far.firedAtMs).toHaveLength(0);
    await settle(revolutionMs / 2 + 120);
    expect(far.firedAtMs).toHaveLength(1);
    expect(far.firedAtMs[0]!).toBeGreaterThanOrEqual(deadline);
  });

  it('fires a deadline already past on the next tick while the wheel is running', async () => {
    const wheel = new TimerWheel();
    const keepsRunning = new Recorder();
    const late = new Recorder();
    wheel.schedule(keepsRunning, performance.now() + 1000);
    await settle(30);
    const scheduledAt = performance.now();
    wheel.schedule(late, scheduledAt - 10);
    await settle(TICK_MS);
    expect(late.firedAtMs).toHaveLength(1);
    expect(late.firedAtMs[0]! - scheduledAt).toBeLessThanOrEqual(TICK_MS);
    wheel.cancel(keepsRunning);
    expect(wheel.size).toBe(0);
  });

  it('keeps its one interval across back-to-back schedules and cancels, and stops it a tick after it empties', async () => {
    const wheel = new TimerWheel();
    const entry = new Recorder();
    expect(vi.getTimerCount()).toBe(0);
    for (let call = 0; call < 3; call++) {
      wheel.schedule(entry, performance.now() + 100);
      wheel.cancel(entry);
      expect(vi.getTimerCount()).toBe(1);
    }
    await settle(2 * TICK_MS);
    expect(vi.getTimerCount()).toBe(0);
    expect(entry.firedAtMs).toHaveLength(0);
    wheel.schedule(entry, performance.now() + 5);
    expect(vi.getTimerCount()).toBe(1);
    await settle(20);
    expect(entry.firedAtMs).toHaveLength(1);
    await settle(2 * TICK_MS);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('lets an entry schedule itself again from its own timer', async () => {
    const wheel = new TimerWheel();
    let fired = 0;
    const repeating: WheelEntry = {
      wheelSlot: -1,
      wheelAtMs: Number.POSITIVE_INFINITY,
      wheelPrevious: undefined,
      wheelNext: undefined,
      onWheelTimer() {
        fired += 1;
        if (fired < 3) wheel.schedule(repeating, performance.now() + 5);
      },
    };
    wheel.schedule(repeating, performance.now() + 5);
    await settle(120);
    expect(fired).toBe(3);
    expect(wheel.size).toBe(0);
  });
});
