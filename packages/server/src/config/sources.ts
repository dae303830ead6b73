/**
 * Where options come from, lowest precedence first: the defaults, the JSON
 * file named by --config (or ROCE_RPC_CONFIG), ROCE_RPC_* environment
 * variables, then command-line flags. Every source is checked for names that
 * are not options, so a typo is refused rather than silently ignored.
 */
import { readFileSync } from 'node:fs';
import { ServerError, ServerErrorCode, invalidField } from '../errors.js';
import { fillServerOptions, kDefaultServerOptions, kOptionSpecs, type FilledServerOptions, type OptionSpec, type ServerOptions } from './options.js';

export interface ResolvedCommandLine {
  options: FilledServerOptions;
  help: boolean;
}

const ENV_PREFIX = 'ROCE_RPC_';

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

function envName(name: string): string {
  return ENV_PREFIX + kebab(name).replace(/-/g, '_').toUpperCase();
}

function specByFlag(flag: string): OptionSpec | undefined {
  return kOptionSpecs.find((spec) => kebab(spec.name) === flag);
}

/** Text values (flags, environment) to typed ones; typing errors are left to fillServerOptions. */
function parseText(spec: OptionSpec, text: string, source: string): unknown {
  switch (spec.kind) {
    case 'integer':
      return /^-?\d+$/.test(text.trim()) ? Number(text) : text;
    case 'transports':
      return text.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
    case 'object':
      try {
        return JSON.parse(text);
      } catch {
        throw invalidField(spec.name, `from ${source} is not JSON`);
      }
    default:
      return text;
  }
}

export function readConfigFile(path: string): ServerOptions {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ServerError(ServerErrorCode.CONFIG_FILE, `config file ${path}: ${(error as Error).message}`, 'config');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ServerError(ServerErrorCode.CONFIG_FILE, `config file ${path}: must hold a JSON object`, 'config');
  }
  for (const key of Object.keys(parsed)) {
    if (!kOptionSpecs.some((spec) => spec.name === key)) {
      throw new ServerError(ServerErrorCode.CONFIG_UNKNOWN_OPTION, `config file ${path}: unknown option ${key}`, key);
    }
  }
  return parsed as ServerOptions;
}

export function optionsFromEnvironment(environment: NodeJS.ProcessEnv): ServerOptions {
  const options: Record<string, unknown> = {};
  for (const spec of kOptionSpecs) {
    const text = environment[envName(spec.name)];
    if (text !== undefined) options[spec.name] = parseText(spec, text, envName(spec.name));
  }
  return options as ServerOptions;
}

interface ParsedFlags {
  options: ServerOptions;
  config: string | undefined;
  help: boolean;
}

function parseFlags(argv: readonly string[]): ParsedFlags {
  const options: Record<string, unknown> = {};
  let config: string | undefined;
  let help = false;
  for (let index = 0; index < argv.length; index++) {
    const argument = argv[index]!;
    if (argument === '--help' || argument === '-h') {
      help = true;
      continue;
    }
    const match = /^--([a-z-]+)(?:=(.*))?$/s.exec(argument);
    if (match === null) throw new ServerError(ServerErrorCode.CONFIG_UNKNOWN_OPTION, `unexpected argument ${argument}`, argument);
    const flag = match[1]!;
    const value = match[2] ?? argv[++index];
    if (value === undefined) throw invalidField(flag, 'needs a value');
    if (flag === 'config') {
      config = value;
      continue;
    }
    const spec = specByFlag(flag);
    if (spec === undefined) throw new ServerError(ServerErrorCode.CONFIG_UNKNOWN_OPTION, `unknown option --${flag} (see --help)`, flag);
    options[spec.name] = parseText(spec, value, `--${flag}`);
  }
  return { options: options as ServerOptions, config, help };
}

/** Resolves argv + environment (+ the config file they name) into validated options. */
export function resolveCommandLine(argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): ResolvedCommandLine {
  const flags = parseFlags(argv);
  const configPath = flags.config ?? environment[`${ENV_PREFIX}CONFIG`];
  const fromFile = configPath === undefined ? {} : readConfigFile(configPath);
  const merged = { ...fromFile, ...optionsFromEnvironment(environment), ...flags.options };
  return { options: fillServerOptions(merged), help: flags.help };
}

export function helpText(): string {
  const lines = [
    'Usage: roce-rpc-server [options]',
    '',
    'Serves one RPC service over ONC RPC/TCP, RxRPC/UDP and RPC-over-RDMA (when an RDMA device exists).',
    'Precedence: defaults < --config FILE (JSON, option names as keys) < ROCE_RPC_* environment < flags.',
    '',
    '  --config FILE  (ROCE_RPC_CONFIG)  JSON file of options',
    '  --help         this text',
  ];
  for (const spec of kOptionSpecs) {
    const fallback = JSON.stringify(kDefaultServerOptions[spec.name]);
    lines.push(`  --${kebab(spec.name)}  (${envName(spec.name)})  ${spec.description}; default ${fallback}`);
  }
  return lines.join('\n');
}
