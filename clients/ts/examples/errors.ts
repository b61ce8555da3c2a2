import { CrosslistApiError, type Connection } from '@crosslist/client';

/** What to tell the user when the API refused a request. */
export function explain(error: unknown): string {
  if (!(error instanceof CrosslistApiError)) throw error; // a network failure, a bug: not the API's answer
  switch (error.code) {
    case 'unauthorized':
      return 'Your session has ended: sign in again.';
    case 'not_found':
      return 'It is gone (or it was never yours).';
    case 'invalid_request':
      // `detail` lists every problem of a malformed request; `message` already names them.
      return `Please check the form: ${error.message}`;
    default:
      // error.status, error.code and error.body say the rest (some codes carry more fields).
      return error.message;
  }
}

/** A connection closed for good tells why: another tab took its place, or the app closed it. */
export function onClosedForGood(connection: Connection, show: (message: string) => void): void {
  connection.on('closed', (reason) => {
    if (reason.code === 'too_many_connections') {
      show('crosslist is open in too many tabs: this one stopped. Reload it to use it here.');
    }
  });
  connection.on('error', (error) => {
    if (error.code === 'rate_limited') show('Too many messages from this tab: slowing down.');
  });
}
