// A devstack of the test's own (`crosslist dev up` on free ports, its data in a temporary directory), as
// tests/e2e/conftest.py starts one for the Python tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The repository's root (this file runs from clients/ts/test-browser/dist/). */
export const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const STARTUP_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;

export interface Devstack {
  httpUrl: string;
  wsUrl: string;
  /** The devstack's own log (its functions' invocations), for a failure's message. */
  log(): string;
  stop(): Promise<void>;
}

/** The crosslist CLI of the project's venv (`make` creates it); CROSSLIST_CLI names another. */
export function crosslistCli(): string {
  return process.env.CROSSLIST_CLI ?? join(REPO, '.venv', 'bin', 'crosslist');
}

export async function startDevstack(): Promise<Devstack> {
  const cli = crosslistCli();
  if (!existsSync(cli)) {
    throw new Error(`${cli} is missing: run \`make browser-test\` (it creates the project's venv first)`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'crosslist-browser-'));
  const logFile = join(dataDir, 'devstack.log');
  const output = openSync(logFile, 'w');
  const args = ['dev', 'up', '--data-dir', dataDir, '--no-schedules'];
  for (const port of ['--http-port', '--ws-port', '--ebay-port', '--etsy-port']) args.push(port, '0');
  const env = { ...process.env };
  delete env.DATABASE_URL; // its own PostgreSQL, in its data directory
  const child = spawn(cli, args, { cwd: REPO, env, stdio: ['ignore', output, output] });
  const log = () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    await stopProcess(child, () => exited);
    rmSync(dataDir, { recursive: true, force: true });
  };
  const endpoints = join(dataDir, 'endpoints.json');
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (!existsSync(endpoints)) {
    if (exited || Date.now() > deadline) {
      const why = exited ? `exited (${child.exitCode})` : `did not start in ${STARTUP_TIMEOUT_MS / 1000} s`;
      const text = log();
      await stop();
      throw new Error(`the devstack ${why}:\n${text.slice(-4000)}`);
    }
    await sleep(100);
  }
  const { http_url: httpUrl, ws_url: wsUrl } = JSON.parse(readFileSync(endpoints, 'utf8')) as Record<string, string>;
  return { httpUrl, wsUrl, log, stop };
}

async function stopProcess(child: ChildProcess, exited: () => boolean): Promise<void> {
  if (exited()) return;
  child.kill('SIGTERM'); // `crosslist dev up` stops its PostgreSQL, moto and fakes on SIGTERM
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (!exited() && Date.now() < deadline) await sleep(100);
  if (!exited()) child.kill('SIGKILL');
}
