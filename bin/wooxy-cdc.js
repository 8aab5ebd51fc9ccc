#!/usr/bin/env node
// The published entry point runs the compiled CLI (built by `npm ci` through the `prepare` script).
import '../dist/src/cli/main.js';
