// The switch's questions the preload asks at each TCP connect (is the host this machine, is an
// endpoint registered for the port), loaded on first use by lazy.ts.
export { isLocalHost, servesHost } from '../switch/policy.js';
export { lookupEndpoint } from '../switch/registry.js';
