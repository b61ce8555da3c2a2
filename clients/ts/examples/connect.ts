import { connect, type Connection, type HttpClient, type SocketConstructor } from '@crosslist/client';

export interface ConnectionSetup {
  /** wss://{api}.execute-api.{region}.amazonaws.com/{stage}, or the devstack's ws://127.0.0.1:8001 */
  wsUrl: string;
  /** The signed-in user's JWT: asked before every (re)connection. */
  getToken: () => Promise<string>;
  api: HttpClient;
  /** A browser has its own; in Node pass the `ws` package's: `import { WebSocket } from 'ws'`. */
  WebSocket?: SocketConstructor;
  log?: (line: string) => void;
}

/** The tab's connection: it reconnects by itself, keeps the user's jobs (`connection.jobs`) up to date, and
 * tells what happens to them. */
export function openConnection(setup: ConnectionSetup): Connection {
  const log = setup.log ?? console.log;
  const connection = connect({
    url: setup.wsUrl,
    getToken: setup.getToken,
    WebSocket: setup.WebSocket,
    // How a job watched with watchJob ended while no socket was open.
    fetchJob: (jobId) => setup.api.get('/jobs/{job_id}', { params: { job_id: jobId } }),
  });
  connection.on('state', (state) => log(`connection: ${state}`));
  connection.on('job.progress', (progress) =>
    log(`job ${progress.job_id}: step ${progress.current_step}/${progress.total_steps}: ${progress.message}`),
  );
  connection.on('job.waiting', (waiting) => log(`job ${waiting.job_id} waits (${waiting.reason})`));
  connection.on('job.retrying', (retry) =>
    log(`job ${retry.job_id}: ${retry.error.message}; attempt ${retry.attempt} at ${retry.next_attempt_at}`),
  );
  connection.on('jobs', (jobs) => {
    const running = [...jobs.values()].filter((job) => job.status === 'running').length;
    log(`${jobs.size} job(s) known, ${running} running`);
  });
  return connection;
}
