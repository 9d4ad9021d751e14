#!/usr/bin/env node
// Entry point of the `exai` command; the implementation is compiled TypeScript.
import { main } from '../dist/src/cli/main.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`exai: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
