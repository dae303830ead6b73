#!/usr/bin/env node
/**
 * xdrgen: compile an XDR / ONC RPC (`.x`) or rxgen (`.xg`) interface file into a
 * TypeScript module.
 *
 *   xdrgen [-o out.ts] [-I dir]... [--runtime module] [--ddp-min-bytes n] [-D NAME=value]... file
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compileFile } from './compile.js';
import { XdrgenError } from './errors.js';

const usage = 'usage: xdrgen [-o out.ts] [-I dir]... [--runtime module] [--ddp-min-bytes n] [-D NAME=value]... file.x|file.xg';

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      include: { type: 'string', short: 'I', multiple: true },
      define: { type: 'string', short: 'D', multiple: true },
      runtime: { type: 'string' },
      'ddp-min-bytes': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help || positionals.length !== 1) {
    process.stderr.write(`${usage}\n`);
    return values.help ? 0 : 2;
  }
  const defines: Record<string, number> = {};
  for (const entry of values.define ?? []) {
    const match = /^([A-Za-z_]\w*)=(-?\d+)$/.exec(entry);
    if (!match) throw new TypeError(`-D ${entry}: expected NAME=integer`);
    defines[match[1]!] = Number(match[2]);
  }
  const ddpText = values['ddp-min-bytes'];
  const result = compileFile(positionals[0]!, {
    includeDirectories: values.include ?? [],
    defines,
    ...(values.runtime !== undefined ? { runtimeImport: values.runtime } : {}),
    ...(ddpText !== undefined ? { ddpMinimumBytes: Number(ddpText) } : {}),
  });
  if (values.output !== undefined) writeFileSync(values.output, result.code);
  else process.stdout.write(result.code);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`xdrgen: ${error instanceof XdrgenError || error instanceof TypeError ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
