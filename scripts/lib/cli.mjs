// Both runners' command lines: node:util's parseArgs, and on a bad option the usage, not a stack.
import { parseArgs } from 'node:util';

export function parseOptions(options, help) {
  let values;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (error) {
    console.error(`${error.message}\n${help}`);
    process.exit(2);
  }
  if (values.help) { console.log(help); process.exit(0); }
  return values;
}
