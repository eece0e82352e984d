// Plain HTTP helpers for the accounts tests: JSON requests, and requests from another loopback address
// (127.0.0.2, 127.0.0.3, …) so throttling per client IP can be seen without a proxy.
import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): unknown;
}

/** An HTTP request whose socket is bound to `localAddress` (any 127.x.y.z works on Linux). */
function requestFrom(
  localAddress: string,
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      url,
      { method: options.method ?? 'GET', headers: options.headers, localAddress, agent: false },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            body,
            json: () => JSON.parse(body),
          });
        });
        response.on('error', reject);
      },
    );
    request.on('error', reject);
    request.end(options.body);
  });
}

/** `POST /api/login` as a browser on the same origin would send it. */
export function loginRequest(
  baseUrl: string,
  username: string,
  password: string,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${baseUrl}/api/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: new URL(baseUrl).origin, ...headers },
    body: JSON.stringify({ username, password }),
  });
}

/** Login from another loopback address. */
export function loginFrom(
  localAddress: string,
  baseUrl: string,
  username: string,
  password: string,
): Promise<RawResponse> {
  return requestFrom(localAddress, `${baseUrl}/api/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: new URL(baseUrl).origin },
    body: JSON.stringify({ username, password }),
  });
}

/** Raw Set-Cookie lines of a fetch response, keyed by cookie name. */
export function setCookies(response: Response): Map<string, string> {
  return new Map(response.headers.getSetCookie().map((line) => [line.slice(0, line.indexOf('=')), line]));
}

/** The value of cookie `name` in a Cookie header. */
export function cookieValue(cookie: string, name: string): string | undefined {
  for (const pair of cookie.split(/;\s*/)) {
    const index = pair.indexOf('=');
    if (pair.slice(0, index) === name) return pair.slice(index + 1);
  }
  return undefined;
}
