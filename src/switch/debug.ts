// XWAY_DEBUG=1: one line on stderr for each transport choice the preload makes.

const flag = process.env.XWAY_DEBUG;
export const debugOn = flag !== undefined && flag !== '' && flag !== '0';

export function debug(line: string): void {
  if (debugOn) process.stderr.write(`xway: ${line}\n`);
}

/** host:port as a connect line shows it ([::1]:80 for IPv6). */
export function hostPort(host: string, port: number | string): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
