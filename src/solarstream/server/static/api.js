// Talking to this gateway, and nothing else: /v1/models, /v1/chat/completions, /health.

const KEY_STORAGE = "solarstream.gatewayKey";

export const gatewayKey = {
  get: () => localStorage.getItem(KEY_STORAGE),
  set(key) { if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE); },
};

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = gatewayKey.get();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

export class GatewayError extends Error {
  constructor(status, error) {
    super((error && error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error && error.code;
    this.param = error && error.param;
  }
}

async function errorOf(response) {
  let body = null;
  try { body = await response.json(); } catch (_) { /* not JSON */ }
  return new GatewayError(response.status, body && body.error);
}

/** What to do about an error, in words. */
export function advice(err) {
  if (err.name === "TypeError") return "The gateway cannot be reached. Is `solarstream serve` still running?";
  switch (err.status) {
    case 401: return "This gateway needs its key: open Settings, paste the gateway key and save it.";
    case 404: return "Pick another model from the list.";
    case 400: return err.param ? `Fix the field "${err.param}" and send again.` : "Change the message and send again.";
    case 413: return "The conversation is too long for this gateway: start a new conversation.";
    case 429: return "Too many requests right now: wait a few seconds and retry.";
    case 502: return "The upstream API failed. Retry in a moment; if it keeps failing, check the gateway's log.";
    case 503: return "The gateway is restarting: retry in a moment.";
    case 504: return "The upstream API timed out: retry, perhaps with a shorter request.";
    default: return "Retry; if it keeps failing, check the gateway's log.";
  }
}

/** A plain record of an error, to show it and keep it with the conversation. */
export function describe(err) {
  return { status: err.status || 0, message: err.message || String(err), advice: advice(err) };
}

export async function listModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (!response.ok) throw await errorOf(response);
  // chat models by their current names (the list also holds dated ids, aliases and embedding models)
  return (await response.json()).data.filter((m) => (m.kind ?? "chat") === "chat" && !m.maps_to).map((m) => m.id);
}

export async function upstreamLabel() {
  try {
    return (await (await fetch("/health")).json()).upstream;
  } catch (_) {
    return null; // the models call reports reachability
  }
}

/** Server-sent events from a fetch body: yields each event's data string. */
async function* sseData(body, signal) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data = [];
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      // a CR at the end may be the first half of a CRLF split across reads: keep it for later
      const held = buffer.endsWith("\r") ? "\r" : "";
      const lines = (held ? buffer.slice(0, -1) : buffer).split(/\r\n|\r|\n/);
      buffer = lines.pop() + held;
      for (const line of lines) {
        if (line === "") {
          if (data.length) { yield data.join("\n"); data = []; }
        } else if (line.startsWith("data:")) {
          data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
        }
        // comments (":") and other fields are ignored
      }
      if (signal.aborted) return;
    }
  } finally {
    reader.releaseLock();
  }
}

/**
 * Stream one chat completion. `on` gets {content, reasoning} deltas and the usage; throws GatewayError
 * (HTTP or in-band errors) or the AbortError of `signal`.
 */
export async function streamChat({ model, messages }, signal, on) {
  const response = await fetch("/v1/chat/completions", {
    method: "POST",
    headers: headers(),
    body: JSON.stringify({ model, messages, stream: true, stream_options: { include_usage: true } }),
    signal,
  });
  if (!response.ok) throw await errorOf(response);
  for await (const data of sseData(response.body, signal)) {
    if (data === "[DONE]") return;
    const chunk = JSON.parse(data);
    if (chunk.error) throw new GatewayError(0, chunk.error);
    for (const choice of chunk.choices || []) {
      const delta = choice.delta || {};
      const reasoning = delta.reasoning || delta.reasoning_content;
      if (delta.content || reasoning) on.delta(delta.content || "", reasoning || "");
    }
    if (chunk.usage) on.usage(chunk.usage);
  }
  if (signal.aborted) throw new DOMException("stopped", "AbortError");
  throw new GatewayError(0, { message: "the answer ended early: the connection closed before it was complete" });
}
