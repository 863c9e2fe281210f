#!/usr/bin/env node
// The `xway` command (package bin): the compiled CLI lives in dist/cli/.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
