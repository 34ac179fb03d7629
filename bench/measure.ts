// Fallback timer when hyperfine is not available: runs a shell command
// RUNS times (after WARMUP untimed runs), each after an untimed PREPARE
// command, and prints the median wall time in milliseconds.
//   measure.ts RUNS WARMUP PREPARE COMMAND     (PREPARE may be "")
import { spawnSync } from 'node:child_process';

const [runsStr, warmupStr, prepare, command] = process.argv.slice(2);
if (!runsStr || !warmupStr || prepare === undefined || !command) {
  process.stderr.write('usage: measure.ts RUNS WARMUP PREPARE COMMAND\n');
  process.exit(2);
}
const sh = (cmd: string): void => {
  const r = spawnSync('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 });
  if (r.status !== 0) throw new Error(`command failed (${r.status ?? r.signal}): ${cmd}`);
};
const times: number[] = [];
const runs = Number(runsStr);
const warmup = Number(warmupStr);
for (let i = 0; i < warmup + runs; i++) {
  if (prepare) sh(prepare);
  const t0 = process.hrtime.bigint();
  sh(command);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (i >= warmup) times.push(ms);
}
times.sort((a, b) => a - b);
const mid = Math.floor(times.length / 2);
const median = times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
process.stdout.write(`${median.toFixed(3)}\n`);
