// Command-line options for the bench runners: node:util's parseArgs, plus --help (the runner's
// usage) and, for a bad flag or value, one line naming it and exit status 2 instead of a stack.
import { parseArgs } from 'node:util';

/** Parses process.argv for `options`; prints `usage` and exits on --help or a bad flag. */
export function benchArgs(options, usage) {
  // `numeric` is ours, not parseArgs's: it is left out of what parseArgs is given.
  const specs = Object.fromEntries(Object.entries(options).map(([name, { numeric, ...spec }]) => [name, spec]));
  let values;
  try {
    ({ values } = parseArgs({ options: { ...specs, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (err) {
    process.stderr.write(`${err.message}\n\n${usage}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  for (const [name, spec] of Object.entries(options)) {
    if (spec.numeric && !(Number(values[name]) > 0)) {
      process.stderr.write(`--${name}: '${values[name]}' is not a positive number\n\n${usage}\n`);
      process.exit(2);
    }
  }
  return values;
}
