// The `xway` command: `xway bench`, `xway stat`, `xway visualize`, `--help`, `--version`.
// Each subcommand lives in its own module, loaded only when it runs. A bad command line prints
// one line naming the flag (or the command) and exits with code 2.

import { readFileSync } from 'node:fs';
import { CommandError, UsageError } from './args.js';

export const HELP = `Usage: xway <command> [options]

xway carries socket traffic between co-resident peers through shared-memory rings behind Node's
net API. This command measures it and shows what it is doing.

Commands:
  bench       netperf for rings: stream, maerts, rr and crr over the xway ring, TCP loopback
              and a Unix socket, between two processes (or two threads)
  stat        live xway endpoints and connections on this host, like ss
  visualize   the browser page that shows rings live

Options:
  -h, --help       this text (and 'xway <command> --help' for each command)
  -v, --version    the xway version

Examples:
  xway bench                          # every test, every transport (a few minutes)
  xway bench --test rr --duration 2   # request/response only
  xway stat --watch                   # refresh the connection table every second
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

type Command = (argv: string[]) => Promise<void>;

const COMMANDS: Record<string, () => Promise<Command>> = {
  bench: async () => (await import('./bench/command.js')).benchCommand,
  stat: async () => (await import('./stat.js')).statCommand,
  visualize: async () => {
    // Written separately (it will be merged later): say so plainly if it is not here yet.
    const where = './visualize.js';
    let mod: { visualizeCommand?: Command };
    try {
      mod = (await import(where)) as { visualizeCommand?: Command };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
        throw new CommandError('visualize is not part of this build of xway yet');
      }
      throw err;
    }
    if (typeof mod.visualizeCommand !== 'function') throw new CommandError('visualize is not part of this build of xway yet');
    return mod.visualizeCommand;
  },
};

export async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help') {
    if (first === 'help' && rest[0] && rest[0] in COMMANDS) return main([rest[0], '--help']);
    process.stdout.write(HELP);
    return 0;
  }
  if (first === '-v' || first === '--version') {
    process.stdout.write(`xway ${version()}\n`);
    return 0;
  }
  const load = Object.hasOwn(COMMANDS, first) ? COMMANDS[first] : undefined;
  if (!load) {
    const what = first.startsWith('-') ? `unknown flag '${first}'` : `unknown command '${first}'`;
    process.stderr.write(`xway: ${what} (commands: ${Object.keys(COMMANDS).join(', ')}; xway --help)\n`);
    return 2;
  }
  try {
    const command = await load();
    await command(rest);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`xway ${first}: ${err.message}\nRun 'xway ${first} --help' for the options.\n`);
      return 2;
    }
    if (err instanceof CommandError) {
      process.stderr.write(`xway ${first}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`xway ${first}: ${(err as Error)?.stack ?? err}\n`);
    return 1;
  }
}
