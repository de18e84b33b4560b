// Calls to the server from the console: the CloudShell API with the
// session cookie and the CSRF token (DESIGN §3), sign-in, preferences.
// Nothing secret is put in a URL or in local storage: the session is an
// HttpOnly cookie and the CSRF token is read from its own cookie each time.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function csrfToken(): string {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === "seashell_csrf") return rest.join("=");
  }
  return "";
}

async function errorOf(r: Response): Promise<ApiError> {
  let code = r.headers.get("x-amzn-errortype") ?? `HTTP ${r.status}`;
  let message = "";
  try {
    const text = await r.text();
    try {
      const body = JSON.parse(text) as { code?: string; message?: string };
      code = body.code ?? code;
      message = body.message ?? "";
    } catch {
      message = text.trim();
    }
  } catch {
    /* no body */
  }
  return new ApiError(r.status, code, message || `The server answered ${r.status}.`);
}

/** One CloudShell operation (lowerCamel name) in `region`. */
export async function cloudshell<T = Record<string, unknown>>(
  region: string,
  operation: string,
  body: Record<string, unknown> = {},
): Promise<T> {
  let r: Response;
  try {
    r = await fetch(`/cloudshell/${operation}`, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "content-type": "application/json",
        "x-csrf-token": csrfToken(),
        "x-seashell-region": region,
      },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "NetworkError", "The server cannot be reached.");
  }
  if (!r.ok) throw await errorOf(r);
  const text = await r.text();
  return (text ? JSON.parse(text) : {}) as T;
}

export interface Identity {
  Arn: string;
  UserName: string;
  Account: string;
  MFAUsed: boolean;
  Regions: string[];
}

export async function whoami(): Promise<Identity | null> {
  const r = await fetch("/whoami", { credentials: "same-origin", cache: "no-store" });
  if (r.status === 401) return null;
  if (!r.ok) throw await errorOf(r);
  return (await r.json()) as Identity;
}

export interface SigninFields {
  account: string;
  username: string;
  password: string;
  mfa_code?: string;
  new_password?: string;
}

/** Signs in (or changes the password and signs in); throws ApiError with
 *  the server's code: Failed, MfaRequired, PasswordChangeRequired,
 *  PasswordPolicy. */
export async function signin(fields: SigninFields): Promise<void> {
  const path = fields.new_password !== undefined ? "/signin/password" : "/signin";
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) form.set(k, v);
  let r: Response;
  try {
    r = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { accept: "application/json" },
      body: form,
    });
  } catch {
    throw new ApiError(0, "NetworkError", "The server cannot be reached.");
  }
  if (!r.ok) throw await errorOf(r);
}

export async function signout(): Promise<void> {
  const r = await fetch("/signout", {
    method: "POST",
    credentials: "same-origin",
    headers: { accept: "application/json", "x-csrf-token": csrfToken() },
  });
  if (!r.ok && r.status !== 401) throw await errorOf(r);
}

export async function loadPreferences(): Promise<Record<string, unknown>> {
  const r = await fetch("/console/preferences", { credentials: "same-origin", cache: "no-store" });
  if (!r.ok) throw await errorOf(r);
  return (await r.json()) as Record<string, unknown>;
}

export async function savePreferences(prefs: Record<string, unknown>): Promise<void> {
  const r = await fetch("/console/preferences", {
    method: "PUT",
    credentials: "same-origin",
    headers: { "content-type": "application/json", "x-csrf-token": csrfToken() },
    body: JSON.stringify(prefs),
  });
  if (!r.ok) throw await errorOf(r);
}
