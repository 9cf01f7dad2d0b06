/**
 * A page's JSON API calls: the token goes in the Authorization header and nowhere else (never a
 * URL, never a cookie), and a refusal becomes an `ApiError` with the API's stable code.
 */

/** An answer other than 2xx, with the API's stable error code. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** The token is missing, wrong, expired, revoked or lacks the scope: ask for another. */
  get needsToken(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

/** What a call sends besides the token: a JSON body, and the version it expects (`If-Match`). */
export interface CallOptions {
  method?: string;
  body?: unknown;
  ifMatch?: string;
}

/** `path` on this origin with `token` as the bearer; the JSON answer, or an `ApiError`. */
export async function callApi<T>(path: string, token: string, options: CallOptions = {}) {
  const { method = "GET", body, ifMatch } = options;
  const headers: Record<string, string> = {
    Authorization: `Bearer ${token}`,
    Accept: "application/json",
  };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch !== undefined) headers["If-Match"] = `"${ifMatch}"`;
  const response = await fetch(path, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    cache: "no-store",
    credentials: "omit",
    referrerPolicy: "no-referrer",
  });
  if (!response.ok) throw await errorOf(response);
  return (await response.json()) as T;
}

/**
 * The refusal in an answer. The APIs answer `{error, message}`; a token check in front of them
 * (the gateway's, as on /mcp) answers a JSON-RPC error, `{error: {code, message}}`.
 */
async function errorOf(response: Response): Promise<ApiError> {
  const body: unknown = await response.json().catch(() => null);
  const record = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  const rpc = record.error;
  if (typeof rpc === "object" && rpc !== null && "message" in rpc) {
    const text = String((rpc as { message: unknown }).message);
    return new ApiError(response.status, `http_${response.status}`, text);
  }
  const code = typeof rpc === "string" ? rpc : `http_${response.status}`;
  const text = typeof record.message === "string" ? record.message : `HTTP ${response.status}`;
  return new ApiError(response.status, code, text);
}
