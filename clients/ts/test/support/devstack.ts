/**
 * A real devstack for the integration tests: `crosslist dev up` from the repository's venv, on free ports,
 * with its own data directory (PostgreSQL included) and signing key, stopped and started again on demand.
 * Tokens come from `crosslist dev token` with the same key.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

import { REPO_ROOT } from './paths.js';

const CROSSLIST = path.join(REPO_ROOT, '.venv', 'bin', 'crosslist');
const START_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 30_000;
const READY_LINE = 'crosslist devstack is up at';

export class Devstack {
  private process: ChildProcess | null = null;
  private output = '';
  private restarting: Promise<void> | null = null;
  private disposed = false;

  private constructor(
    readonly dataDir: string,
    readonly httpPort: number,
    readonly wsPort: number,
    private readonly secret: string,
  ) {}

  /** Whether the devstack can be started here (the Python venv is installed: `make install`). */
  static available(): boolean {
    return existsSync(CROSSLIST);
  }

  static async start(): Promise<Devstack> {
    // PostgreSQL runs as its own OS user when this runs as root: the directory must be reachable by it.
    const dataDir = await mkdtemp(path.join(tmpdir(), 'crosslist-ts-'));
    await chmod(dataDir, 0o755);
    const stack = new Devstack(dataDir, await freePort(), await freePort(), randomBytes(48).toString('base64url'));
    await stack.up();
    return stack;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.wsPort}`;
  }

  /** A JWT for `user`, minted by `crosslist dev token`. */
  async token(user: string, expiresIn = 3600): Promise<string> {
    const { stdout } = await promisify(execFile)(
      CROSSLIST,
      ['dev', 'token', '--user', user, '--expires-in', String(expiresIn)],
      { cwd: REPO_ROOT, env: this.environment() },
    );
    return stdout.trim();
  }

  /** Stop it (as Ctrl-C would: what it holds is kept) and start it again on the same ports and data. */
  restart(): Promise<void> {
    const restarting = (async () => {
      await this.stop();
      await this.up();
    })();
    this.restarting = restarting.finally(() => {
      if (this.restarting === restarting) this.restarting = null;
    });
    return restarting;
  }

  async stop(): Promise<void> {
    const child = this.process;
    if (child === null) return;
    this.process = null;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  /** Stop it and remove its data. */
  async dispose(): Promise<void> {
    this.disposed = true;
    await this.restarting?.catch(() => undefined);
    await this.stop();
    await rm(this.dataDir, { recursive: true, force: true });
  }

  /** What it printed (for a failing test's message). */
  get log(): string {
    return this.output;
  }

  private environment(): NodeJS.ProcessEnv {
    const environment: NodeJS.ProcessEnv = { ...process.env, CROSSLIST_DEV_JWT_SECRET: this.secret };
    delete environment['DATABASE_URL']; // its own PostgreSQL, in its data directory
    return environment;
  }

  private async up(): Promise<void> {
    if (this.disposed) throw new Error('the devstack was disposed of');
    const args = [
      'dev',
      'up',
      '--http-port',
      String(this.httpPort),
      '--ws-port',
      String(this.wsPort),
      '--ebay-port',
      '0',
      '--etsy-port',
      '0',
      '--no-schedules',
      '--data-dir',
      this.dataDir,
    ];
    const child = spawn(CROSSLIST, args, { cwd: REPO_ROOT, env: this.environment(), stdio: ['ignore', 'pipe', 'pipe'] });
    this.process = child;
    let printed = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`the devstack did not start in ${START_TIMEOUT_MS} ms:\n${this.output.slice(-4000)}`));
      }, START_TIMEOUT_MS);
      const seen = (chunk: Buffer): void => {
        this.record(chunk);
        printed += chunk.toString();
        if (printed.includes(READY_LINE)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', seen);
      child.stderr?.on('data', (chunk: Buffer) => this.record(chunk));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the devstack exited (${code ?? signal}) while starting:\n${this.output.slice(-4000)}`));
      });
    });
  }

  private record(chunk: Buffer): void {
    this.output = (this.output + chunk.toString()).slice(-50_000);
  }
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
