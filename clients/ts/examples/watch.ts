import type { Connection, HttpClient, JobFinalMessage, Schemas } from '@crosslist/client';

import { publishOnVinted } from './http.js';

/** Publish a product on Vinted and wait for the job's end: completed, failed or cancelled. A retry
 * (`job.retrying`) is not an end: the job goes on by itself. */
export async function publishAndWatch(
  api: HttpClient,
  connection: Connection,
  product: Schemas['ProductCreate'],
  log: (line: string) => void = console.log,
): Promise<JobFinalMessage> {
  const job = await publishOnVinted(api, product);
  log(`job ${job.id}: ${job.status}`);
  const end = await connection.watchJob(job.id, { signal: AbortSignal.timeout(5 * 60_000) });
  switch (end.type) {
    case 'job.completed':
      log(`listed on Vinted: ${String(end.result['url'])}`);
      break;
    case 'job.failed':
      log(`not listed: ${end.error.message} (${end.error.code})`);
      break;
    case 'job.cancelled':
      log('cancelled');
      break;
  }
  return end;
}
