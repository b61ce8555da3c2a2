/**
 * @crosslist/client: the web app's kit for crosslist's backend (see docs/client.md).
 *
 * - `createHttpClient`: the HTTP API, typed from docs/openapi.json;
 * - `connect`: the WebSocket connection, reconnecting by itself, with the user's jobs;
 * - `relay`: the browser extension's bridge, running the backend's Vinted commands.
 */
export * from './http.js';
export * from './protocol.js';
export * from './realtime.js';
export * from './relay.js';
