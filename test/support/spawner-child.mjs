// The far end of test/support/spawner-remote.ts: a small process that runs commands for a big one.
// Forking a test worker that holds hundreds of MB costs ~20 ms of page-table copying per command; forking this
// one costs a fraction of it. One JSON line in per command, one JSON line out per result; stdin's end ends it.
import { Buffer } from 'node:buffer';
import { spawn } from 'node:child_process';
import { clearTimeout, setTimeout } from 'node:timers';
import { createInterface } from 'node:readline';

const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

createInterface({ input: process.stdin }).on('line', (line) => {
  const { id, file, args, input, timeoutMs } = JSON.parse(line);
  const stdout = [];
  const stderr = [];
  let timedOut = false;
  let child;
  try {
    child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (error) {
    reply({ id, code: 127, stdout: '', stderr: String(error), timedOut: false });
    return;
  }
  const timer = timeoutMs ? setTimeout(() => { timedOut = true; child.kill('SIGTERM'); }, timeoutMs) : undefined;
  child.stdout.on('data', (chunk) => stdout.push(chunk));
  child.stderr.on('data', (chunk) => stderr.push(chunk));
  child.stdin.on('error', () => {});
  child.on('error', (error) => stderr.push(Buffer.from(String(error))));
  child.on('close', (code, signal) => {
    clearTimeout(timer);
    reply({
      id,
      code: code ?? (timedOut ? 124 : 128 + (signal === 'SIGKILL' ? 9 : 15)),
      stdout: Buffer.concat(stdout).toString('base64'),
      stderr: Buffer.concat(stderr).toString('base64'),
      timedOut,
    });
  });
  child.stdin.end(input === undefined ? undefined : Buffer.from(input, 'base64'));
});
