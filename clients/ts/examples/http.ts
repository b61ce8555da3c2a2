import { createHttpClient, type HttpClient, type Schemas } from '@crosslist/client';

/** The HTTP API as the signed-in user: every route, its parameters and its answers typed from the API's
 * OpenAPI document. `getToken` is asked before each request, so a refreshed token is always the one used. */
export function apiClient(baseUrl: string, getToken: () => Promise<string>): HttpClient {
  return createHttpClient({ baseUrl, getToken });
}

/** Create a product, then a job publishing it on Vinted: the job to follow. */
export async function publishOnVinted(api: HttpClient, product: Schemas['ProductCreate']): Promise<Schemas['JobView']> {
  const created = await api.post('/products', { body: product });
  return api.post('/jobs', { body: { marketplace: 'vinted', action: 'publish', product_id: created.id } });
}
