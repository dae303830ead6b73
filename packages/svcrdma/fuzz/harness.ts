/**
 * The loop both fuzzers share: reads `[cases] [seed]` from the command line,
 * draws from a seeded xorshift32 (deterministic per seed, so a failure can be
 * replayed), feeds each generated input to the fuzzer's check and counts the
 * outcomes. A HeaderRejection is the one allowed failure and is counted by its
 * reason; anything else thrown is printed with its case, seed and input, and
 * fails the run.
 */
import { HeaderRejection } from '../dist/index.js';

export interface Fuzzer {
  readonly cases: number;
  readonly seed: number;
  /** A uniform integer in [0, limit). */
  readonly below: (limit: number) => number;
}

export function startFuzzer(): Fuzzer {
  const cases = Number(process.argv[2] ?? 1_000_000);
  const seed = Number(process.argv[3] ?? Date.now() % 0x7fffffff) >>> 0 || 1;
  let state = seed;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x1_0000_0000;
  };
  return { cases, seed, below: (limit) => Math.floor(random() * limit) };
}

/** Counts one outcome of a case under a name the report prints. */
export type CountOutcome = (outcome: string) => void;

export function runFuzzer(
  name: string,
  fuzzer: Fuzzer,
  nextInput: () => Buffer,
  check: (input: Buffer, count: CountOutcome) => void,
): void {
  const outcomes = new Map<string, number>();
  const count: CountOutcome = (outcome) => outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  const started = process.hrtime.bigint();
  for (let index = 0; index < fuzzer.cases; index++) {
    const input = nextInput();
    try {
      check(input, count);
    } catch (error) {
      if (error instanceof HeaderRejection) {
        count(`header ${error.reason.name}`);
        continue;
      }
      console.error(`case ${index} (seed ${fuzzer.seed}) input ${input.toString('hex')}`);
      console.error(error);
      process.exit(1);
    }
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`${name}: ${fuzzer.cases} cases in ${seconds.toFixed(2)} s = ${Math.round(fuzzer.cases / seconds)} cases/s (seed ${fuzzer.seed})`);
  for (const [outcome, number] of [...outcomes].sort((a, b) => b[1] - a[1])) console.log(`    ${outcome.padEnd(36)} ${number}`);
}
