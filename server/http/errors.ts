// Typed errors and the one middleware that maps them to `{ "error": { "code", "message" } }`.
// Koa's default onerror strips headers set earlier (koajs/koa#571), so errors are answered here, inside
// the security-header middleware, and never reach it.
import type { Context, Next } from 'koa';
import type { Logger } from '../log.ts';

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  /** Whether `message` may be shown to the client. */
  readonly expose: boolean;
  readonly headers: Record<string, string>;
  /** The input field the error is about, answered as `error.field`. */
  readonly field: string | undefined;
  constructor(
    status: number,
    code: string,
    message: string,
    options: { expose?: boolean; headers?: Record<string, string>; field?: string } = {},
  ) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.expose = options.expose ?? status < 500;
    this.headers = options.headers ?? {};
    this.field = options.field;
  }
}

export class ValidationError extends AppError {
  constructor(message: string, field?: string) {
    super(400, 'invalid_input', message, field === undefined ? {} : { field });
  }
}
export class UnauthorizedError extends AppError {
  constructor(message = 'authentication required') {
    super(401, 'unauthorized', message);
  }
}
export class ForbiddenError extends AppError {
  constructor(message = 'forbidden') {
    super(403, 'forbidden', message);
  }
}
export class NotFoundError extends AppError {
  constructor(message = 'not found') {
    super(404, 'not_found', message);
  }
}
export class PayloadTooLargeError extends AppError {
  constructor(message = 'request body too large') {
    super(413, 'payload_too_large', message);
  }
}
export class MethodNotAllowedError extends AppError {
  constructor(message = 'method not allowed') {
    super(405, 'method_not_allowed', message);
  }
}
export class UnsupportedMediaTypeError extends AppError {
  constructor(message: string) {
    super(415, 'unsupported_media_type', message);
  }
}
/** A request body that does not decode as its Content-Encoding says (not gzip, truncated…). */
export class BadEncodingError extends AppError {
  constructor(message = 'request body does not decode as its Content-Encoding') {
    super(400, 'bad_encoding', message);
  }
}
export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number, message = 'too many requests') {
    super(429, 'rate_limited', message, {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}
export class UnavailableError extends AppError {
  constructor(message = 'service unavailable') {
    super(503, 'unavailable', message);
  }
}

interface HttpLikeError {
  status?: unknown;
  statusCode?: unknown;
  expose?: unknown;
  message?: unknown;
  type?: unknown;
}

/** Content-Encodings the body parser decodes (the `inflation` package behind @koa/bodyparser). */
const DECODED_ENCODINGS = 'gzip, deflate, br, identity';

/**
 * zlib and brotli stream errors (`Z_DATA_ERROR`, `Z_BUF_ERROR`, `ERR__ERROR_FORMAT_PADDING_2`…): the
 * client's body is not what its Content-Encoding says. Issue 14, item 5: this was a 500 with a stack.
 */
function isDecodeError(error: { code?: unknown; errno?: unknown }): boolean {
  return (
    typeof error.errno === 'number' &&
    typeof error.code === 'string' &&
    /^(Z_|ERR__ERROR|ERR_BROTLI|ERR_ZLIB)/.test(error.code)
  );
}

/** Errors thrown by Koa itself or its middleware (`ctx.throw`, body parser) carry `status` + `expose`. */
function fromHttpError(error: HttpLikeError): AppError | undefined {
  if (isDecodeError(error as { code?: unknown; errno?: unknown })) return new BadEncodingError();
  const status =
    typeof error.status === 'number'
      ? error.status
      : typeof error.statusCode === 'number'
        ? error.statusCode
        : undefined;
  if (status === undefined || status < 400 || status >= 500) return undefined;
  const message = error.expose === true && typeof error.message === 'string' ? error.message : 'bad request';
  if (status === 413) return new PayloadTooLargeError(message);
  if (status === 404) return new NotFoundError(message);
  if (status === 415 && typeof error.message === 'string' && /Content-Encoding/i.test(error.message)) {
    return new UnsupportedMediaTypeError(`Content-Encoding: only ${DECODED_ENCODINGS} are accepted`);
  }
  return new AppError(status, status === 400 ? 'bad_request' : 'client_error', message);
}

/** Maps every thrown error to a JSON answer; unknown errors are 500 with a generic message. */
export function errorMiddleware(log: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new NotFoundError();
      // The router's 405 (with its Allow header) has no body; answer it in the JSON error shape too.
      if (ctx.status === 405 && ctx.body == null) throw new MethodNotAllowedError();
    } catch (caught) {
      const error =
        caught instanceof AppError ? caught : (fromHttpError((caught ?? {}) as HttpLikeError) ?? undefined);
      if (!error) {
        log.error({ err: caught, url: ctx.url, method: ctx.method }, 'unhandled error');
      }
      const status = error?.status ?? 500;
      ctx.status = status;
      for (const [name, value] of Object.entries(error?.headers ?? {})) ctx.set(name, value);
      ctx.type = 'application/json';
      ctx.body = {
        error: {
          code: error?.code ?? 'internal',
          message: error?.expose ? error.message : 'internal server error',
          ...(error?.field ? { field: error.field } : {}),
        },
      };
    }
  };
}
