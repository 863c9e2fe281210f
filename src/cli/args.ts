// What every subcommand of the `xway` command shares: strict flag parsing whose errors name the
// flag, exit code 2 for a usage error, and number/size/list parsing with units.

import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A bad command line: printed as `xway <command>: <message>` with exit code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs, strict, with its errors rewritten to name the flag plainly. */
export function parseFlags<T extends Options>(args: string[], options: T, allowPositionals = false):
  ReturnType<typeof parseArgs<{ args: string[]; options: T; strict: true; allowPositionals: boolean }>> {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const message = e.message;
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = message.match(/option '([^']+)'/i)?.[1] ?? '?';
      throw new UsageError(`unknown flag '${flag}'`);
    }
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = message.match(/'(?:-\w, )?(--?[^ ']+)/)?.[1] ?? '?';
      throw new UsageError(`flag '${flag}' ${/argument missing/.test(message) ? 'needs a value' : 'takes no value'}`);
    }
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const what = message.match(/argument '([^']+)'/i)?.[1] ?? '?';
      throw new UsageError(`unexpected argument '${what}'`);
    }
    throw new UsageError(message);
  }
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1 << 20, mb: 1 << 20, mib: 1 << 20, g: 1 << 30, gb: 1 << 30, gib: 1 << 30 };

/** '64', '1k', '64KiB', '1m' → bytes (binary units: 1k = 1024). */
export function parseSize(flag: string, text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  const value = m && unit !== undefined ? Math.round(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`flag '--${flag}': '${text}' is not a size (bytes, or with a unit: 64, 1k, 64k, 1m)`);
  }
  return value;
}

/** A positive number (or ≥ 0 with `zero`), optionally an integer. */
export function parseNumber(flag: string, text: string, { integer = false, zero = false } = {}): number {
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < 0 || (v === 0 && !zero) || (integer && !Number.isInteger(v))) {
    const what = integer ? 'a positive integer' : zero ? 'a number ≥ 0' : 'a number > 0';
    throw new UsageError(`flag '--${flag}' must be ${what}, got '${text}'`);
  }
  return v;
}

/** 'a,b' → ['a', 'b'], each checked against `allowed`. */
export function parseList<T extends string>(flag: string, text: string, allowed: readonly T[]): T[] {
  const items = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (items.length === 0) throw new UsageError(`flag '--${flag}' needs at least one of ${allowed.join(', ')}`);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new UsageError(`flag '--${flag}': unknown value '${item}' (one of ${allowed.join(', ')})`);
  }
  return [...new Set(items)] as T[];
}

/** 64 → '64 B', 1024 → '1 KiB', 1048576 → '1 MiB'. */
export function sizeName(n: number): string {
  if (n >= 1 << 20 && n % (1 << 20) === 0) return `${n / (1 << 20)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} B`;
}

/** A failure the user can act on, printed as one line (no stack) with exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}
