/**
 * answer(): a procedure's result from one store call, without a promise when the store answers
 * at once (the memory store; store.ts): the dispatcher then encodes the reply in the same turn.
 * An async procedure costs a promise and a microtask turn per layer (the procedure, the
 * metrics' wrapper, the dispatcher's await): in the lab's emulated guest those were ≈ 3% of a
 * main-thread GETATTR's CPU (a V8 profile, 19:12 UTC).
 *
 * Stateless functions; any thread.
 */
import type { Awaitable } from '../store/store.js';

/**
 * `succeeded(value)` of what `start()` answers, or `failed(error)` if it throws or rejects.
 * `succeeded` only builds the result (it must not throw).
 */
export function answer<Value, Result>(start: () => Awaitable<Value>, succeeded: (value: Value) => Result, failed: (error: unknown) => Awaitable<Result>): Awaitable<Result> {
  let value: Awaitable<Value>;
  try {
    value = start();
  } catch (error) {
    return failed(error);
  }
  return value instanceof Promise ? value.then(succeeded, failed) : succeeded(value);
}
