#!/usr/bin/env node
import { main } from '../dist/main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${JSON.stringify({ severity: 'CRITICAL', service: 'tributary', message: `Fatal: ${err instanceof Error ? err.message : String(err)}` })}\n`);
    process.exit(1);
  },
);
