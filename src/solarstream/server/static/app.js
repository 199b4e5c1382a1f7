// solarstream chat page: talks only to this gateway's own API (/v1/models, /v1/chat/completions).
// Model output is never parsed as HTML: the markdown renderer builds DOM nodes and sets textContent.
"use strict";

(() => {
  const KEY_STORAGE = "solarstream.gatewayKey";
  const SYSTEM_STORAGE = "solarstream.system";
  const MODEL_STORAGE = "solarstream.model";
  const $ = (id) => document.getElementById(id);
  const el = {
    model: $("model"), system: $("system"), key: $("key"), keySave: $("key-save"), keyRow: $("key-row"),
    settings: $("settings"), settingsToggle: $("settings-toggle"), messages: $("messages"), empty: $("empty"),
    error: $("error"), form: $("composer"), prompt: $("prompt"), send: $("send"), stop: $("stop"),
    newChat: $("new"), upstream: $("upstream"),
  };

  /** The conversation sent with each request (without the system prompt, added per request). */
  let history = [];
  /** The AbortController of the answer being streamed, if any. */
  let running = null;

  // ---------- safe markdown: DOM nodes only, never innerHTML ----------

  /** Inline markdown: `code`, **bold**, *em* / _em_, [text](http(s) link). Text is always textContent. */
  function renderInline(text, parent) {
    const pattern = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\b_([^_]+)_\b|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g;
    let last = 0;
    for (const m of text.matchAll(pattern)) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      let node;
      if (m[1]) { node = document.createElement("code"); node.textContent = m[2]; }
      else if (m[3] !== undefined) { node = document.createElement("strong"); renderInline(m[3], node); }
      else if (m[4] !== undefined) { node = document.createElement("em"); renderInline(m[4], node); }
      else if (m[5] !== undefined) { node = document.createElement("em"); renderInline(m[5], node); }
      else {
        node = document.createElement("a");
        node.textContent = m[6];
        node.href = m[7];            // only http(s) URLs match the pattern: no javascript: links
        node.rel = "noopener noreferrer nofollow";
        node.target = "_blank";
      }
      parent.appendChild(node);
      last = m.index + m[0].length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  /** Block markdown: fenced code, headings, lists, quotes, paragraphs. Returns a DocumentFragment. */
  function renderMarkdown(source) {
    const out = document.createDocumentFragment();
    const lines = source.replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    let paragraph = [];
    const flush = () => {
      if (!paragraph.length) return;
      const p = document.createElement("p");
      paragraph.forEach((line, n) => {
        if (n) p.appendChild(document.createElement("br"));
        renderInline(line, p);
      });
      out.appendChild(p);
      paragraph = [];
    };
    while (i < lines.length) {
      const line = lines[i];
      const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)\s*$/);
      if (fence) {
        flush();
        const body = [];
        i += 1;
        while (i < lines.length && !lines[i].trim().startsWith(fence[1])) { body.push(lines[i]); i += 1; }
        i += 1; // the closing fence (or the end of an answer still streaming)
        const pre = document.createElement("pre");
        const code = document.createElement("code");
        if (fence[2]) code.dataset.lang = fence[2];
        code.textContent = body.join("\n");
        pre.appendChild(code);
        out.appendChild(pre);
        continue;
      }
      const heading = line.match(/^(#{1,6})\s+(.*)$/);
      if (heading) {
        flush();
        const h = document.createElement(`h${Math.min(heading[1].length + 2, 6)}`);
        renderInline(heading[2], h);
        out.appendChild(h);
        i += 1;
        continue;
      }
      const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
      if (item) {
        flush();
        const ordered = /\d/.test(item[1]);
        const list = document.createElement(ordered ? "ol" : "ul");
        while (i < lines.length) {
          const m = lines[i].match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
          if (!m || /\d/.test(m[1]) !== ordered) break;
          const li = document.createElement("li");
          renderInline(m[2], li);
          list.appendChild(li);
          i += 1;
        }
        out.appendChild(list);
        continue;
      }
      if (/^>\s?/.test(line)) {
        flush();
        const quote = document.createElement("blockquote");
        const body = [];
        while (i < lines.length && /^>\s?/.test(lines[i])) { body.push(lines[i].replace(/^>\s?/, "")); i += 1; }
        quote.appendChild(renderMarkdown(body.join("\n")));
        out.appendChild(quote);
        continue;
      }
      if (!line.trim()) { flush(); i += 1; continue; }
      paragraph.push(line);
      i += 1;
    }
    flush();
    return out;
  }

  // ---------- talking to the gateway ----------

  function headers() {
    const h = { "Content-Type": "application/json" };
    const key = localStorage.getItem(KEY_STORAGE);
    if (key) h.Authorization = `Bearer ${key}`;
    return h;
  }

  class GatewayError extends Error {
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
  function advice(err) {
    if (err.name === "TypeError") return "The gateway cannot be reached. Is `solarstream serve` still running?";
    switch (err.status) {
      case 401: return "This gateway needs its key: open Settings, paste the gateway key and save it.";
      case 404: return "Pick another model from the list.";
      case 400: return err.param ? `Fix the field "${err.param}" and send again.` : "Change the message and send again.";
      case 413: return "The conversation is too long for this gateway: start a new conversation.";
      case 429: return "Too many requests right now: wait a few seconds and send again.";
      case 502: return "The upstream API failed. Send again in a moment; if it keeps failing, check the gateway's log.";
      case 503: return "The gateway is restarting: send again in a moment.";
      case 504: return "The upstream API timed out: send again, perhaps with a shorter request.";
      default: return "Send again; if it keeps failing, check the gateway's log.";
    }
  }

  function showError(err) {
    el.error.replaceChildren();
    const title = document.createElement("strong");
    title.textContent = err.status ? `Error ${err.status}: ` : "Error: ";
    const message = document.createElement("span");
    message.className = "error-message";
    message.textContent = err.message;
    const what = document.createElement("p");
    what.className = "error-advice";
    what.textContent = advice(err);
    el.error.append(title, message, what);
    el.error.hidden = false;
    if (err.status === 401) openSettings(true);
  }

  function clearError() { el.error.hidden = true; el.error.replaceChildren(); }

  async function loadModels() {
    try {
      const response = await fetch("/v1/models", { headers: headers() });
      if (!response.ok) throw await errorOf(response);
      const body = await response.json();
      const saved = localStorage.getItem(MODEL_STORAGE);
      el.model.replaceChildren();
      for (const m of body.data.filter((m) => (m.kind ?? "chat") === "chat" && !m.maps_to)) {
        const option = document.createElement("option");
        option.value = m.id;
        option.textContent = m.id;
        el.model.appendChild(option);
      }
      if (saved && body.data.some((m) => m.id === saved)) el.model.value = saved;
      el.model.dataset.loaded = "true";
      clearError();
    } catch (err) {
      showError(err);
    }
  }

  async function loadHealth() {
    try {
      const response = await fetch("/health");
      const body = await response.json();
      if (body.upstream === "emulator") {
        el.upstream.textContent = "offline emulator — answers are not from a real model";
        el.upstream.hidden = false;
      }
    } catch (_) { /* the models call reports reachability */ }
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

  // ---------- the conversation ----------

  function addMessage(role, text) {
    el.empty.hidden = true;
    const box = document.createElement("article");
    box.className = `msg ${role}`;
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = role === "user" ? "You" : el.model.value || "assistant";
    box.appendChild(who);
    let reasoning = null;
    if (role === "assistant") {
      reasoning = document.createElement("details");
      reasoning.className = "reasoning";
      reasoning.hidden = true;
      const summary = document.createElement("summary");
      summary.textContent = "Reasoning";
      const body = document.createElement("div");
      body.className = "reasoning-text";
      reasoning.append(summary, body);
      box.appendChild(reasoning);
    }
    const content = document.createElement("div");
    content.className = "content";
    if (role === "user") content.textContent = text;
    box.appendChild(content);
    el.messages.appendChild(box);
    box.scrollIntoView({ block: "end" });
    return { box, content, reasoning };
  }

  function setRunning(controller) {
    running = controller;
    el.send.hidden = !!controller;
    el.stop.hidden = !controller;
    el.prompt.disabled = false;
  }

  async function send(text) {
    clearError();
    history.push({ role: "user", content: text });
    addMessage("user", text);
    const view = addMessage("assistant", "");
    view.box.classList.add("streaming");
    const messages = [];
    const system = el.system.value.trim();
    if (system) messages.push({ role: "system", content: system });
    messages.push(...history);
    const controller = new AbortController();
    setRunning(controller);
    let answer = "";
    let thinking = "";
    let frame = 0;
    const paint = () => {
      frame = 0;
      view.content.replaceChildren(renderMarkdown(answer));
      if (thinking) {
        view.reasoning.hidden = false;
        view.reasoning.querySelector(".reasoning-text").textContent = thinking;
      }
      view.box.scrollIntoView({ block: "end" });
    };
    const schedule = () => { if (!frame) frame = requestAnimationFrame(paint); };
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: headers(),
        body: JSON.stringify({ model: el.model.value, messages, stream: true }),
        signal: controller.signal,
      });
      if (!response.ok) throw await errorOf(response);
      for await (const data of sseData(response.body, controller.signal)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new GatewayError(0, chunk.error);
        for (const choice of chunk.choices || []) {
          const delta = choice.delta || {};
          if (delta.content) answer += delta.content;
          const r = delta.reasoning || delta.reasoning_content;
          if (r) thinking += r;
        }
        schedule();
      }
      view.box.classList.add("done");
    } catch (err) {
      if (err.name === "AbortError") {
        view.box.classList.add("stopped");
        const note = document.createElement("p");
        note.className = "note";
        note.textContent = "Stopped.";
        view.box.appendChild(note);
      } else {
        view.box.classList.add("failed");
        showError(err);
      }
    } finally {
      if (frame) cancelAnimationFrame(frame);
      paint();
      view.box.classList.remove("streaming");
      // a failed or empty answer is not part of the history; the question stays
      if (answer) history.push({ role: "assistant", content: answer });
      setRunning(null);
    }
  }

  function openSettings(focusKey) {
    el.settings.hidden = false;
    el.settingsToggle.setAttribute("aria-expanded", "true");
    if (focusKey) el.key.focus();
  }

  // ---------- wiring ----------

  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = el.prompt.value.trim();
    if (!text || running) return;
    el.prompt.value = "";
    send(text);
  });
  el.prompt.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      el.form.requestSubmit();
    }
  });
  el.stop.addEventListener("click", () => { if (running) running.abort(); });
  el.newChat.addEventListener("click", () => {
    if (running) running.abort();
    history = [];
    el.messages.replaceChildren(el.empty);
    el.empty.hidden = false;
    clearError();
    el.prompt.focus();
  });
  el.settingsToggle.addEventListener("click", () => {
    const open = el.settings.hidden;
    el.settings.hidden = !open;
    el.settingsToggle.setAttribute("aria-expanded", String(open));
  });
  el.keySave.addEventListener("click", () => {
    const key = el.key.value.trim();
    if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
    el.key.value = "";
    el.key.placeholder = key ? "saved (enter a new one to replace it)" : "the key the gateway was started with";
    loadModels();
  });
  el.model.addEventListener("change", () => localStorage.setItem(MODEL_STORAGE, el.model.value));
  el.system.value = localStorage.getItem(SYSTEM_STORAGE) || "";
  el.system.addEventListener("input", () => localStorage.setItem(SYSTEM_STORAGE, el.system.value));
  if (localStorage.getItem(KEY_STORAGE)) el.key.placeholder = "saved (enter a new one to replace it)";

  loadHealth();
  loadModels();
})();
